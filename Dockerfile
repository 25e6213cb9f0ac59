# The action's image. The runner builds it on every job unless action.yml names a prebuilt image by digest
# (see .github/workflows/release.yml).
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# The dependencies come first and alone, so a change to the code reuses this layer. A venv works on every
# base: Debian's own python3 refuses system-wide pip installs (PEP 668), the official image does not care.
# Wheels only: a slim base has no compiler for an sdist. The venv's own pip and setuptools are not needed
# at run time (a quarter of the layer).
COPY requirements.lock /tmp/requirements.lock
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/requirements.lock \
    && pip uninstall --yes --quiet pip setuptools \
    && rm /tmp/requirements.lock

COPY ecr_action/ /app/ecr_action/
COPY entrypoint.py /app/entrypoint.py

# No USER: the action drives the runner's Docker Engine through /var/run/docker.sock, which the runner
# mounts owned by root, so a non-root user could not build or push.
# Exec form: the runner passes inputs as INPUT_<NAME> variables whose names keep the input's hyphens; a
# shell in between would drop them, since they are not valid shell variable names.
ENTRYPOINT ["/opt/venv/bin/python", "/app/entrypoint.py"]
