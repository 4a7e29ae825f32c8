"""Where an environment's AWS API is: the local region or AWS, behind one small interface."""
