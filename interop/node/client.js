#!/usr/bin/env node
// Calls helloworld.Greeter/SayHello over TLS or mutual TLS with @grpc/grpc-js.
//
// Same contract as the Go client: prints the reply message on stdout and exits 0; on failure
// prints one line "ERROR <CODE>: <message>" (CODE is the canonical gRPC status name) and exits 1.
// Problems with the flags or files are reported as INVALID_ARGUMENT before connecting.
// Without --cert/--key it connects without a client certificate.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO = path.join(__dirname, '..', 'proto', 'helloworld.proto');

function fail(code, message) {
  const name = grpc.status[code] || `CODE_${code}`;
  process.stdout.write(`ERROR ${name}: ${String(message).split(/\s+/).join(' ').trim()}\n`);
  process.exit(1);
}

function readFile(flag, file) {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    return fail(grpc.status.INVALID_ARGUMENT, `cannot read --${flag}: ${err.message}`);
  }
}

function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        addr: { type: 'string' },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        'server-name': { type: 'string' },
        name: { type: 'string', default: 'world' },
        timeout: { type: 'string', default: '10' }, // seconds
      },
      strict: true,
    }));
  } catch (err) {
    return fail(grpc.status.INVALID_ARGUMENT, err.message);
  }
  if (!values.addr || !values.ca) {
    return fail(grpc.status.INVALID_ARGUMENT, '--addr and --ca are required');
  }
  if (Boolean(values.cert) !== Boolean(values.key)) {
    return fail(grpc.status.INVALID_ARGUMENT, '--cert and --key go together');
  }
  const timeout = Number(values.timeout);
  if (!(timeout > 0)) {
    return fail(grpc.status.INVALID_ARGUMENT, '--timeout must be a positive number of seconds');
  }
  const rootCerts = readFile('ca', values.ca);
  const key = values.key ? readFile('key', values.key) : null;
  const certChain = values.cert ? readFile('cert', values.cert) : null;

  let credentials;
  try {
    credentials = grpc.credentials.createSsl(rootCerts, key, certChain);
  } catch (err) {
    return fail(grpc.status.INVALID_ARGUMENT, `bad TLS material: ${err.message}`);
  }
  const options = {};
  if (values['server-name']) {
    options['grpc.ssl_target_name_override'] = values['server-name'];
    options['grpc.default_authority'] = values['server-name'];
  }

  const definition = protoLoader.loadSync(PROTO, { keepCase: true, defaults: true });
  const { helloworld } = grpc.loadPackageDefinition(definition);
  const client = new helloworld.Greeter(values.addr, credentials, options);
  const deadline = new Date(Date.now() + timeout * 1000);
  client.SayHello({ name: values.name }, { deadline }, (err, reply) => {
    client.close();
    if (err) {
      fail(err.code, err.details || err.message);
      return;
    }
    process.stdout.write(`${reply.message}\n`);
    process.exit(0);
  });
  return undefined;
}

main();
