// Runs an original TF.js graph model (model.json + shards, read from disk) on
// the inputs Python wrote, with @tensorflow/tfjs and its wasm backend, and
// writes the outputs back as raw little-endian float32 files. This is the
// reference side of the equivalence check in `cargo xtask models`.
//
// Usage: node tfjs_reference.cjs JOB.json
// JOB: {"model_json": path, "backend": "wasm"|"cpu",
//       "cases": [{"input": path, "shape": [...], "output_prefix": path}]}
// For each case writes `<output_prefix>.<k>.f32` and prints one JSON line
// describing every output (name, signature key, shape, file).
'use strict';

const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm');

function loadArtifacts(modelJson) {
  const model = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const dir = path.dirname(modelJson);
  const specs = [];
  const buffers = [];
  for (const group of model.weightsManifest) {
    specs.push(...group.weights);
    for (const shard of group.paths) buffers.push(fs.readFileSync(path.join(dir, shard)));
  }
  const joined = Buffer.concat(buffers);
  return {
    modelTopology: model.modelTopology,
    format: model.format,
    generatedBy: model.generatedBy,
    convertedBy: model.convertedBy,
    signature: model.signature,
    userDefinedMetadata: model.userDefinedMetadata,
    weightSpecs: specs,
    weightData: joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength),
  };
}

function signatureKeys(signature) {
  const keys = {};
  const outputs = (signature && signature.outputs) || {};
  for (const [key, value] of Object.entries(outputs)) {
    if (value && value.name) keys[value.name] = key;
  }
  return keys;
}

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const backend = job.backend || 'wasm';
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} unavailable`);
  await tf.ready();
  const artifacts = loadArtifacts(job.model_json);
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const keys = signatureKeys(artifacts.signature);
  const names = model.outputs.map((o) => o.name);
  for (const c of job.cases) {
    const raw = fs.readFileSync(c.input);
    const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const input = tf.tensor(data, c.shape, 'float32');
    const started = process.hrtime.bigint();
    let outputs = model.execute(input, names);
    if (!Array.isArray(outputs)) outputs = [outputs];
    const described = [];
    for (let k = 0; k < outputs.length; k += 1) {
      const values = await outputs[k].data();
      const file = `${c.output_prefix}.${k}.f32`;
      fs.writeFileSync(file, Buffer.from(new Float32Array(values).buffer));
      described.push({ name: names[k], key: keys[names[k]] || null, shape: outputs[k].shape, file });
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    tf.dispose([input, ...outputs]);
    process.stdout.write(`${JSON.stringify({ input: c.input, backend: tf.getBackend(), ms, outputs: described })}\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
