"""Headers every answer of the platform carries, whoever writes it (the WSGI middleware,
or gunicorn's worker for the requests it refuses itself)."""

# Vary of every answer: the caller, the format and the language choose what is sent
VARY = ('Accept', 'Accept-Language', 'Authorization')
CORS_HEADERS = [
    ('Access-Control-Allow-Origin', '*'),
    ('Access-Control-Expose-Headers', 'Location, Content-Crs, Content-Language, Link, ETag'),
]
