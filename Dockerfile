# Recommender Explorer for a room: one container, CPU only, hosted mode on.
#
#   docker build -t recommender-explorer .
#   docker run -p 8501:8501 -v recsys-home:/home/recsys/data \
#              -v /srv/movielens:/datasets:ro -e RECSYS_DATA_ROOTS=/datasets recommender-explorer
#
# Uploads and the experiment store live in RECSYS_HOME (a volume, so a restart loses nothing).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The CPU build of torch first (the default wheel bundles CUDA, ~2 GB more); requirements.txt
# pins the same version, which the CPU wheel (2.13.0+cpu) satisfies.
COPY requirements.txt ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -r requirements.txt

RUN useradd --create-home --uid 1000 recsys \
    && mkdir -p /home/recsys/data \
    && chown recsys:recsys /home/recsys/data

# the code stays root's (read-only for the app); the app writes only under RECSYS_HOME
COPY . ./
# hosted web-server settings replace the laptop ones
COPY .streamlit/hosted.toml .streamlit/config.toml
# compiled once here: the first visitor does not wait for bytecode compilation
RUN python -m compileall -q app.py app_pages ui recsys

ENV RECSYS_HOSTED=1 \
    RECSYS_HOME=/home/recsys/data
VOLUME ["/home/recsys/data"]

USER recsys
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4); sys.exit(0 if r.read().strip() == b'ok' else 1)"]

CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
