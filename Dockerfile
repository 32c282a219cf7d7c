# Schoolgate on a school gateway. Build: docker build -t schoolgate .
# Run:   docker run -p 8080:8080 -v schoolgate-data:/var/lib/schoolgate \
#          -v /etc/schoolgate:/etc/schoolgate:ro -e SCHOOLGATE_CONFIG=/etc/schoolgate/school.toml schoolgate
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SCHOOLGATE_DATA=/var/lib/schoolgate \
    SCHOOLGATE_CONFIG=/opt/schoolgate/config/example.toml

WORKDIR /opt/schoolgate
COPY pyproject.toml setup.py README.md ./
COPY proxy ./proxy
COPY addons ./addons
COPY categories ./categories
COPY alerts ./alerts
COPY reports ./reports
COPY config ./config
# gcc builds the C parts of the category lookup (categories/*.c, see categories/native.py), then goes.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && pip install --no-cache-dir . \
 && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
 && (cd / && python -c "import categories._hostprobe, categories._fasturl") \
 && useradd --system --home-dir /var/lib/schoolgate --shell /usr/sbin/nologin schoolgate \
 && mkdir -p /var/lib/schoolgate && chown schoolgate:schoolgate /var/lib/schoolgate && chmod 0700 /var/lib/schoolgate

USER schoolgate
VOLUME ["/var/lib/schoolgate"]
EXPOSE 8080 5353/udp 5353/tcp

# The proxy must answer on its own port: a TCP connect is enough to know it is serving.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import socket,sys; socket.create_connection(('127.0.0.1', 8080), 3).close()" || exit 1

CMD ["sh", "-c", "[ -f \"$SCHOOLGATE_DATA/categories.idx\" ] || schoolgate init; exec schoolgate run"]
