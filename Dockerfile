# The sentiment API in a container: gunicorn serving models that are built into the image.
#
#   docker build -t sentiment-api .        # trains on lib/data/train.tsv[.gz] if you put Kaggle's file there,
#                                          # else on the public Rotten Tomatoes corpus (binary model only);
#                                          # ratings from lib/data/movies.json, else fetched from npm
#   docker run -p 127.0.0.1:5000:5000 sentiment-api       # on this machine only, for trying it
#   docker run -p 127.0.0.1:5000:5000 -v /srv/models:/models:ro -e MODEL_DIR=/models sentiment-api   # your models
#   docker compose -f deploy/compose.yaml up --build       # on a network: nginx in front (docs/running.md)
#
# tests/e2e/test_container_recipe.py runs this recipe without Docker (its RUN steps but pip install, CMD
# and HEALTHCHECK) on tiny data in lib/data/; tests/test_deploy.py checks deploy/kubernetes.yaml agrees.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Built as root, served as another user: the models are read-only to the server.
RUN python build_model.py
# The one folder the server writes: the prediction log's SQLite file (PREDICTION_LOG's default). Mount a
# volume there to keep the log across containers, or set PREDICTION_LOG to a PostgreSQL URL.
RUN mkdir -p state && chown 10001:10001 state

# An unprivileged numeric user (no account needed), so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
ENV BIND=0.0.0.0:5000 WEB_CONCURRENCY=2
EXPOSE 5000
# The slim image has no curl; Python's standard library does the check (on the port BIND sets above).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=3)"]
CMD ["gunicorn", "app:app"]
