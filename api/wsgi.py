"""The WSGI entry point gunicorn loads: `gunicorn -c gunicorn.conf.py api.wsgi:app`."""

from api.app import create_app

app = create_app()
