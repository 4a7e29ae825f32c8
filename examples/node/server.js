// node-api: an Express app behind the load balancer. The env file webfleet writes on every
// instance sets APP_NAME, APP_ENVIRONMENT, APP_HEALTH_CHECK_PATH, APP_LOAD_BALANCER_DNS_NAME,
// APP_URL and the stack's app.env; the unit sets PORT (app.port) and NODE_ENV=production.
'use strict';

const os = require('node:os');
const express = require('express');

const port = Number(process.env.PORT || 3000);
// All interfaces, as the load balancer reaches the instance by its private IP.
const host = process.env.HOST || '0.0.0.0';
const healthCheckPath = process.env.APP_HEALTH_CHECK_PATH || '/api/healthcheck';

const app = express();
app.disable('x-powered-by');
// The ALB in front sets X-Forwarded-For/-Proto: req.ip and req.protocol are the client's.
app.set('trust proxy', true);

app.use((req, res, next) => {
  res.set('X-Served-By', os.hostname());
  next();
});

// The target group's health check (app.health_check_path).
app.get(healthCheckPath, (req, res) => {
  res.json({ status: 'ok' });
});

// Which instance answered: refresh through the load balancer to see it change.
app.get('/', (req, res) => {
  res.json({
    app: process.env.APP_NAME || 'node-api',
    environment: process.env.APP_ENVIRONMENT || 'unknown',
    hostname: os.hostname(),
    node: process.version,
  });
});

app.use((req, res) => {
  res.status(404).json({ error: 'not found', path: req.path });
});

const server = app.listen(port, host, () => {
  console.log(`node-api listening on ${host}:${port}`);
});

// systemd stops the service with SIGTERM: finish the requests in flight, then exit.
process.on('SIGTERM', () => {
  console.log('SIGTERM: closing');
  server.close(() => process.exit(0));
  // Node 18 keeps idle keep-alive connections open on close() (later versions close them).
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 10000).unref();
});
