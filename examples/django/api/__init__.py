"""django-api: a small Django JSON API served by Gunicorn behind the load balancer."""
