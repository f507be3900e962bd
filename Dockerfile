# The image of both halves, on a slim Python: `eni-controller run` (the controller,
# the default command, as a non-root user) and `eni-controller agent` (the node
# agent: the chart's DaemonSet passes args ["agent"] and runs it as root with
# NET_ADMIN only, see agent.securityContext in the chart's values.yaml). One
# package, one wheel: the agent's netlink library (pyroute2) is a dependency.
#
# Nothing is fetched unpinned. The base image is pinned by digest (below). Every
# distribution pip downloads is a wheel named in a lock file with its sha256
# (`pip install --require-hashes --only-binary=:all:`): requirements.lock for what
# the image ships, requirements-build.lock for what the build stage runs (the
# hatchling build backend, the cyclonedx-bom SBOM generator). Both are generated
# from pyproject.toml by `make lock`; tests/unit/test_image_build_inputs.py keeps
# them in step.
#
# Stage 1 installs the locked dependencies into a pip-less virtualenv, builds the
# project's wheel offline (no build isolation: the locked hatchling) and installs it
# there, then writes the CycloneDX SBOM of that virtualenv to
# /opt/eni-controller/sbom.cdx.json. Stage 2 gets only that virtualenv (SBOM
# included): no compiler, no pip, no source tree, no build cache.
#   make image                      # docker build -t aws-multi-eni-controller:dev .
#   make image-multiarch            # linux/amd64 + linux/arm64 manifest (buildx)
#   make test-image                 # podman: build, then run non-root, read-only
#   docker run --rm aws-multi-eni-controller:dev version
#   docker run --rm aws-multi-eni-controller:dev agent --help
#
# python:3.11-slim-bookworm (Python 3.11.16, Debian 12) by the digest of its
# multi-arch OCI index (linux/amd64 and linux/arm64/v8 among its platforms, so the
# one pin serves every architecture), as published by the Docker Official Images
# in docker-library/repo-info, repos/python/remote/3.11-slim-bookworm.md at commit
# 33a22f41ac7bf613bc03380b0317536a9a7fb5e8 (images of 25 Aug 2026). To move it,
# take the new index digest from that file (or `docker buildx imagetools inspect
# python:3.11-slim-bookworm`); tests/unit/test_image_build_inputs.py refuses a
# default without one. Builds where no registry is reachable pass a local stand-in
# as --build-arg PYTHON_IMAGE (make test-image).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements.lock requirements-build.lock ./
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --only-binary=:all: \
        -r requirements-build.lock \
    && python -m venv --without-pip /opt/eni-controller \
    && /opt/build/bin/pip --python /opt/eni-controller/bin/python install \
        --require-hashes --only-binary=:all: --compile -r requirements.lock
COPY pyproject.toml README.md ./
COPY eni_controller/ eni_controller/
# The wheel ships both CRDs, NodeENI and ENINode (pyproject's force-include),
# for `eni-controller check`.
COPY helm/aws-multi-eni-controller/crds/ helm/aws-multi-eni-controller/crds/
# --no-index: the project's dependencies must already be there, from the lock.
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/build/bin/pip --python /opt/eni-controller/bin/python install \
        --no-index --compile /wheels/aws_multi_eni_controller-*.whl \
    && /opt/build/bin/pip --python /opt/eni-controller/bin/python check \
    && /opt/build/bin/cyclonedx-py environment --pyproject pyproject.toml \
        --output-reproducible --output-format JSON \
        --output-file /opt/eni-controller/sbom.cdx.json /opt/eni-controller/bin/python

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
LABEL org.opencontainers.image.title="aws-multi-eni-controller" \
      org.opencontainers.image.description="Attaches extra AWS ENIs to EKS nodes, declared by NodeENI resources" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
# A fixed numeric UID/GID so that the pod's runAsNonRoot can verify it.
RUN groupadd --system --gid 65532 eni-controller \
    && useradd --system --no-log-init --uid 65532 --gid 65532 \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin eni-controller
COPY --from=build /opt/eni-controller /opt/eni-controller
# Bytecode is compiled at install time; nothing writes to the (read-only) root filesystem.
ENV PATH=/opt/eni-controller/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["eni-controller"]
CMD ["run"]
