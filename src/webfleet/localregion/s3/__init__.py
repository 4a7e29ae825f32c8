"""The local region's S3: moto's, with the fixes in api_fixes.py."""
