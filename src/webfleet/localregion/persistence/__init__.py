"""The region's records kept on disk, so that a killed API daemon's successor carries on."""
