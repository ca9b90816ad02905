# The worker and API image for docker-compose.yml (production-shaped stack), in two stages:
# the wheel is built in the first; the second installs it and nothing else (no compiler,
# no source tree, no development servers: those are the `devstack` extra).

FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY domain domain
COPY workflows workflows
COPY activities activities
COPY infra infra
COPY api api
COPY desk desk
COPY stack stack
COPY worker.py starter.py ./
# The wheel of this project and of each dependency, so the runtime stage needs no index.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm AS runtime
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels aftersales \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /var/lib/aftersales --create-home aftersales
# Read at start (activities/policy_file.py); mount another file over it to change the policy.
COPY policy.toml /etc/aftersales/policy.toml
ENV AFTERSALES_POLICY_FILE=/etc/aftersales/policy.toml \
    PYTHONUNBUFFERED=1
WORKDIR /var/lib/aftersales
USER 10001:10001
# The API's port; the worker's status port (/metrics, /healthz, /readyz).
EXPOSE 8000 9464
CMD ["aftersales-worker"]
