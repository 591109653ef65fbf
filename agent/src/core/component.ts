/**
 * A part of the daemon with a lifecycle. The constructor only stores what it is given; start()
 * acquires (sockets, files, timers), stop() releases and must be safe to call twice. The controller
 * starts components in order and stops them in reverse.
 */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
