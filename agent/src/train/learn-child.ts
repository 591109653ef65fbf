/**
 * The child process a learn run trains in (daemon/learner.ts forks it): lowest CPU priority first —
 * before the trainer's threads exist, so they inherit it — then the job it is sent, its progress
 * and bundles told back over the IPC channel. Its own entry point, so it may touch `process`.
 */
import { getPriority, setPriority } from 'node:os';
import { runLearnJob, type LearnJob, type LearnJobMessage } from './learn-job.js';

/** nice 19: the scheduler runs this only when the daemon's threads have nothing to do. */
const LOWEST_PRIORITY = 19;

const tell = (m: LearnJobMessage) => process.send!(m);

process.once('message', (job: LearnJob) => {
  try {
    setPriority(LOWEST_PRIORITY);
  } catch {
    // Not allowed here (some containers): train anyway; the daemon logs the priority it sees.
  }
  tell({ type: 'started', pid: process.pid, priority: getPriority() });
  // The last message is sent before the channel closes, so the daemon hears how it ended.
  const end = (m: LearnJobMessage) => process.send!(m, () => process.disconnect());
  runLearnJob(job, tell).then(
    () => end({ type: 'done' }),
    (err: Error) => end({ type: 'error', message: err.message }),
  );
});
