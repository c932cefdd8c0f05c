# The crisis-radar stream worker. Build: docker build -t crisis-radar .
# Run against a Kafka cluster: docker run -e CRISIS_RADAR_BROKERS=HOST:9092 -p 6066:6066 crisis-radar
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY detector ./detector
COPY streams ./streams
COPY config ./config
# Every pinned dependency has a manylinux wheel for CPython 3.11: no compiler needed.
RUN pip install . \
    && useradd --system --create-home --uid 10001 --user-group radar \
    && install -d -o radar -g radar /var/lib/crisis-radar

USER radar
WORKDIR /var/lib/crisis-radar
# Faust's data directory (the table store is memory://, restored from the changelog topic).
ENV CRISIS_RADAR_DATA_DIR=/var/lib/crisis-radar/data \
    CRISIS_RADAR_WEB_HOST=0.0.0.0 \
    CRISIS_RADAR_WEB_PORT=6066

EXPOSE 6066
CMD ["crisis-radar", "worker"]
