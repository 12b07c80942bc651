# Installs only what this service needs: protocols, the MQTT transport and its own package.
FROM python:3.11-slim
WORKDIR /app
COPY protocols /app/protocols
COPY transport /app/transport
COPY firmware-sim /app/firmware-sim
RUN pip install --no-cache-dir ./protocols ./transport ./firmware-sim 
CMD ["eldercare-sim", "--help"]
