"""User filters: an ADQL expression language over alerts, evaluated column-wise over batches."""
