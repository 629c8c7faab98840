// Errors are values with a stable code and a message a person can act on. Each capability derives
// its own class and adds what its edge needs to answer precisely (a SIP status, an HTTP status…).

export class ParleyError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
