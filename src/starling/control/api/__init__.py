"""The control plane's HTTP APIs: one router module per resource, assembled in ``app``.

``worker`` (each runtime's own API), ``pipeline`` (the controller's view and stage changes),
``autoscaler``, ``filters`` and ``watch`` (users' filters, watchlists and watchmaps); ``auth`` is the
one authorization dependency, ``deps`` gives handlers the controller or runtime of their app, and
``common`` the shared response documents and refusals.
"""
