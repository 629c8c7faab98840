// The cmdlets over HTTP, run in-process by the same handlers as `parley admin --data-dir`:
//
//   GET  /admin/cmdlets                 → {"cmdlets": [{name, synopsis, syntax, parameters: [...]}, ...]}
//   GET  /admin/cmdlets/{Cmdlet-Name}   → one of them
//   POST /admin/cmdlets/{Cmdlet-Name}   {"parameters": {...}} → {"cmdlet": "Set-CsImConfiguration", "results": [{...}]}

import type { Sql } from '../../storage/index.ts';
import { AdminError } from '../errors.ts';
import { toJsonObjects } from '../format.ts';
import { closestName, findCmdlet, syntaxOf } from '../parse.ts';
import type { CmdletSpec } from '../types.ts';
import type { AdminEndpoint } from './endpoints.ts';
import { bindJsonParameters, parametersOf } from './validate.ts';

export interface CmdletEndpointOptions {
  readonly sql: Sql;
  readonly domain: string;
  readonly cmdlets: readonly CmdletSpec[];
  readonly now: () => number;
  /** after every cmdlet that changed something (any verb but Get) */
  readonly onChanged: (cmdlet: string) => void;
}

/** Raised as problem members: the closest cmdlet name, or the valid parameter names. */
export class CmdletProblem extends AdminError {
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(error: AdminError, extensions: Record<string, unknown>) {
    super(error.code, error.message, { cause: error });
    this.extensions = extensions;
  }
}

export function cmdletEndpoints(opts: CmdletEndpointOptions): AdminEndpoint[] {
  const names = opts.cmdlets.map((c) => c.name);
  const cmdletNamed = (name: string): CmdletSpec => {
    try {
      return findCmdlet(opts.cmdlets, name);
    } catch (error) {
      if (error instanceof AdminError) throw new CmdletProblem(error, { closest: closestName(name, names) ?? null });
      throw error;
    }
  };
  return [
    {
      method: 'GET',
      path: '/cmdlets',
      handle: () => ({ cmdlets: opts.cmdlets.map(describeCmdlet) }),
    },
    {
      method: 'GET',
      path: '/cmdlets/:name',
      handle: ({ params }) => describeCmdlet(cmdletNamed(params.name ?? '')),
    },
    {
      method: 'POST',
      path: '/cmdlets/:name',
      async handle({ params, body, actor, logger }) {
        const cmdlet = cmdletNamed(params.name ?? '');
        let bound;
        try {
          bound = bindJsonParameters(cmdlet, parametersOf(body));
        } catch (error) {
          if (error instanceof AdminError && error.code === 'UNKNOWN_PARAMETER') {
            throw new CmdletProblem(error, { validParameters: cmdlet.parameters.map((p) => p.name) });
          }
          throw error;
        }
        const output = await cmdlet.run({ sql: opts.sql, domain: opts.domain, actor, now: opts.now }, bound);
        logger.info({ cmdlet: cmdlet.name, parameters: Object.keys(bound), actor }, 'admin API ran %s', cmdlet.name);
        if (!cmdlet.name.startsWith('Get-')) opts.onChanged(cmdlet.name);
        return { cmdlet: cmdlet.name, results: toJsonObjects(output) };
      },
    },
  ];
}

export function describeCmdlet(cmdlet: CmdletSpec) {
  return {
    name: cmdlet.name,
    synopsis: cmdlet.synopsis,
    syntax: syntaxOf(cmdlet),
    parameters: cmdlet.parameters.map((p) => ({
      name: p.name,
      type: p.type,
      required: p.required === true,
      nullable: p.nullable === true,
      ...(p.position === undefined ? {} : { position: p.position }),
      ...(p.secret === true ? { secret: true } : {}),
      ...(p.help === undefined ? {} : { help: p.help }),
    })),
  };
}
