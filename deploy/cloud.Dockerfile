# Installs only what this service needs: protocols, the MQTT transport, the cloud, and the
# console's static files.
FROM python:3.11-slim
WORKDIR /app
COPY protocols /app/protocols
COPY transport /app/transport
COPY cloud /app/cloud
COPY dashboards /app/dashboards
RUN pip install --no-cache-dir ./protocols ./transport ./cloud
ENV ELDERCARE_CLOUD_HTTP__DASHBOARDS_DIR=/app/dashboards
CMD ["eldercare-cloud", "run"]
