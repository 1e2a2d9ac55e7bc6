# The one image every Starling service runs: `starling serve <stage>`, `starling controller`,
# `starling feed`, `starling run`. Build: docker build -t starling:0.1.0 .
# (No container engine on the development machine: this file is checked by tests/deploy/test_manifests.py,
# not built there.)

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# Wheels for Starling and every dependency, so the final image needs no compiler and no network.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 starling \
    && mkdir -p /var/lib/starling /etc/starling \
    && chown starling:starling /var/lib/starling
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels starling-broker \
    && rm -rf /wheels
USER starling
WORKDIR /var/lib/starling
# 8080: a stage worker's control API; 8765: the controller's API.
EXPOSE 8080 8765
ENTRYPOINT ["starling"]
CMD ["--help"]
