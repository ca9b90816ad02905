# The worker and API image for docker-compose.yml (production-shaped stack).
FROM python:3.11.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY workflows workflows
COPY activities activities
COPY infra infra
COPY api api
COPY worker.py starter.py policy.toml ./
RUN pip install --no-cache-dir .
ENV AFTERSALES_POLICY_FILE=/app/policy.toml
USER nobody
CMD ["python", "worker.py"]
