# Installs only what this service needs: protocols, the MQTT transport and its own package;
# not the `simulate` extra (the device simulator) and not the run command's demo broker.
FROM python:3.11-slim
WORKDIR /app
COPY protocols /app/protocols
COPY transport /app/transport
COPY edge /app/edge
RUN pip install --no-cache-dir ./protocols ./transport ./edge 
CMD ["eldercare-edge", "run", "--config", "/config/gateway.yaml"]
