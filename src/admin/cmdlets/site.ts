// Get-/New-/Remove-CsSite. Identity: Site:<name> or <name>.
import { DirectoryError, countSiteUsers, createSite, listSites, parseSiteIdentity, removeSite, requireSite } from '../../directory/index.ts';
import type { Site } from '../../directory/index.ts';
import { countSiteInstances, recordAudit } from '../../settings/index.ts';
import { wildcard } from '../parse.ts';
import type { CmdletSpec, OutputObject } from '../types.ts';
import { argString } from '../types.ts';
import { change } from './settings-nouns.ts';

const IDENTITY_HELP = 'Site:<name> or <name>';

export const SITE_CMDLETS: readonly CmdletSpec[] = [
  {
    name: 'Get-CsSite',
    synopsis: 'shows the sites (all, one -Identity, or those matching -Filter)',
    parameters: [
      { name: 'Identity', type: 'string', position: 0, help: IDENTITY_HELP },
      { name: 'Filter', type: 'string', help: 'wildcard on Identity, e.g. "site:red*"' },
    ],
    async run(ctx, args) {
      const identity = argString(args, 'Identity');
      const filter = argString(args, 'Filter');
      const sites = identity !== undefined ? [await requireSite(ctx.sql, parseSiteIdentity(identity))] : await listSites(ctx.sql);
      const pattern = filter === undefined ? undefined : wildcard(filter);
      const shown = sites.filter((s) => pattern === undefined || pattern.test(s.identity));
      const output: OutputObject[] = [];
      for (const s of shown) output.push(outputOf(s, await countSiteUsers(ctx.sql, s.name)));
      return output;
    },
  },
  {
    name: 'New-CsSite',
    synopsis: 'creates a site',
    parameters: [{ name: 'Identity', type: 'string', position: 0, required: true, help: IDENTITY_HELP }],
    async run(ctx, args) {
      const site = await ctx.sql.transaction(async (tx) => {
        const created = await createSite(tx, parseSiteIdentity(argString(args, 'Identity') ?? ''), ctx.now);
        await recordAudit(tx, change(ctx, 'New-CsSite'), created.identity, null, null, 'created');
        return created;
      });
      return [outputOf(site, 0)];
    },
  },
  {
    name: 'Remove-CsSite',
    synopsis: 'removes a site no user and no settings instance uses',
    parameters: [{ name: 'Identity', type: 'string', position: 0, required: true, help: IDENTITY_HELP }],
    async run(ctx, args) {
      await ctx.sql.transaction(async (tx) => {
        const site = await requireSite(tx, parseSiteIdentity(argString(args, 'Identity') ?? ''));
        const users = await countSiteUsers(tx, site.name);
        const instances = await countSiteInstances(tx, site.name);
        if (users > 0 || instances > 0) {
          const uses = [
            users > 0 ? `${users} user${users === 1 ? '' : 's'} (move them with Set-CsUser -Site)` : '',
            instances > 0 ? `${instances} settings instance${instances === 1 ? '' : 's'} (remove them with Remove-CsImConfiguration / Remove-CsClientPolicy / Remove-CsExternalAccessPolicy -Identity ${site.identity})` : '',
          ].filter((s) => s !== '');
          throw new DirectoryError('SITE_IN_USE', `the site ${site.name} is still used by ${uses.join(' and ')}`);
        }
        await removeSite(tx, site.name);
        await recordAudit(tx, change(ctx, 'Remove-CsSite'), site.identity, null, 'existed', 'removed');
      });
      return [];
    },
  },
];

function outputOf(site: Site, users: number): OutputObject {
  return [['Identity', site.identity], ['SiteName', site.name], ['Users', users], ['WhenCreated', site.createdAt]];
}
