"""``starling web``: the data side of Starling over HTTP (TAP now; the portal and its REST API next)."""
