"""EC2 in the local region: instances as nspawn machines, their networks and metadata service."""
