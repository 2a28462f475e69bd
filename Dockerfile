# Image of the mmstream service for docker-compose.yml (not built by the test suite).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY src ./src
RUN rm -f src/mmstream/schemas && cp -r schemas src/mmstream/schemas && pip install --no-cache-dir .
RUN mkdir -p /var/lib/mmstream && chown nobody /var/lib/mmstream
ENV MMSTREAM_DATA_DIR=/var/lib/mmstream
EXPOSE 8321
USER nobody
ENTRYPOINT []
CMD ["mmstream", "run"]
