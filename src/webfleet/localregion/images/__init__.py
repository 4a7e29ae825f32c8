"""AMIs in the local region: the Debian base image, the catalogue, each AMI's overlay layers."""
