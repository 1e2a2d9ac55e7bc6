# The one image every Starling service runs: `starling serve <stage>`, `starling controller`,
# `starling feed`, `starling run`. Build: docker build -t starling:0.1.0 .
# (No container engine on the development machine: this file is checked by tests/deploy/test_manifests.py,
# not built there.)

# The portal's browser libraries, from its npm lockfile (the pages use no CDN).
FROM node:20-slim AS portal
WORKDIR /portal
COPY src/starling/web/portal/package.json src/starling/web/portal/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim AS build
# A C compiler for the compiled reader of Rubin alerts (starling.alert._projected), which pip would
# otherwise leave out without a word.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY --from=portal /portal/node_modules/uplot/dist/uPlot.iife.min.js /portal/node_modules/uplot/dist/uPlot.min.css ./src/starling/web/portal/static/vendor/
# Wheels for Starling and every dependency, so the final image needs no compiler and no network.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 starling \
    && mkdir -p /var/lib/starling /etc/starling \
    && chown starling:starling /var/lib/starling
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels starling-broker \
    && rm -rf /wheels \
    && python -c "import starling.alert._projected"
USER starling
WORKDIR /var/lib/starling
# 8080: a stage worker's control API; 8765: the controller's API; 8770: the web service (TAP, portal).
EXPOSE 8080 8765 8770
ENTRYPOINT ["starling"]
CMD ["--help"]
