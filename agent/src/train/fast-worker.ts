/**
 * A thread of the fast trainer (train/fast-fit.ts): its own network on the shared parameters,
 * gradients of its slice of each batch into its shared gradient buffer, validation error of its
 * slice of the validation set.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { planNetwork } from '../model/fast-lstm.js';
import { chunked, type WorkerReply, type WorkerRequest, type WorkerSetup } from './fast-fit.js';
import { TrainableNetwork } from './fast-network.js';

const s = workerData as WorkerSetup;
const a = s.artifacts;
const net = new TrainableNetwork(planNetwork(a.modelTopology, a.weightSpecs, a.weightData, s.seqLen, s.nFeatures), s.chunk, s.kernel);
const params = new Float64Array(s.params);
const grad = new Float64Array(s.grad);
const train = new Float32Array(s.train);
const val = new Float32Array(s.val);
const valOrder = Uint32Array.from({ length: val.length / (s.seqLen * s.nFeatures) }, (_, i) => i);

parentPort!.on('message', (req: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    net.setParams(params);
    if (req.op === 'grad') {
      net.zeroGrad();
      const sse = chunked(net, req.from, req.to, (x, y) => net.gradient(train, req.order, x, y, req.scale));
      grad.set(net.grad);
      reply = { ok: true, sse };
    } else {
      reply = { ok: true, sse: chunked(net, req.from, req.to, (x, y) => net.sse(val, valOrder, x, y)) };
    }
  } catch (err) {
    reply = { ok: false, error: (err as Error).message };
  }
  parentPort!.postMessage(reply);
});
