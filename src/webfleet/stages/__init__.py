"""The pipeline's stages: render, bundle, bake, deploy, rollout, verify, load, pipeline.

Stages report through a `Reporter` (webfleet.reporting) and print nothing themselves.
"""
