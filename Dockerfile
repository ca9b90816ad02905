# The worker image for docker-compose.yml (production-shaped stack).
FROM python:3.11.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY workflows workflows
COPY activities activities
COPY infra infra
COPY worker.py starter.py ./
RUN pip install --no-cache-dir .
USER nobody
CMD ["python", "worker.py"]
