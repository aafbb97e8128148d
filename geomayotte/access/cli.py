"""geomayotte-partners: partners, their API keys and their rights on datasets."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from geomayotte import commands, settings
from geomayotte.access import policy, store, tokens

EPILOG = """examples:
  geomayotte-partners add commune-mamoudzou "Commune de Mamoudzou"
  geomayotte-partners key issue commune-mamoudzou --label "SIG mairie" --days 365
  geomayotte-partners grant commune-mamoudzou zones_inondation --write
  geomayotte-partners list
  geomayotte-partners key revoke 0123456789abcdef
  geomayotte-partners disable commune-mamoudzou      (enable: back again)

Diffusion levels live in config/datasets.yml: open (anyone), partners (any partner with a
valid credential), restricted (partners granted the dataset). Writing needs a grant with
--write. API keys are shown once, when issued; only their SHA-256 is stored."""


def _datasets() -> dict[str, set[str]]:
    """{collection: the types of its providers} of pygeoapi-config.yml."""
    import yaml
    with open(settings.pygeoapi_config(), encoding='utf-8') as fh:
        cfg = yaml.safe_load(fh)
    return {rid: {p.get('type') for p in res.get('providers') or []}
            for rid, res in (cfg.get('resources') or {}).items() if res.get('type') == 'collection'}


def _writable() -> set[str]:
    """Collections a feature type of the reference model describes (geomayotte.writes)."""
    from geomayotte.validation import model as modelmod
    return {ft.platform_collection for ft in modelmod.load().feature_types.values()
            if ft.platform_collection}


@commands.friendly('geomayotte-partners')
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog='geomayotte-partners', description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--database-url', default=None, help='default: DATABASE_URL or the private cluster')
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('add', help='add a partner')
    p.add_argument('partner', help='identifier: a-z 0-9 _ - (2 to 63 characters)')
    p.add_argument('name', help='full name')
    p = sub.add_parser('disable', help='disable a partner (every credential stops working)')
    p.add_argument('partner')
    p = sub.add_parser('enable', help='enable a disabled partner again (its keys not revoked '
                                      'or expired, its grants and OIDC tokens work again)')
    p.add_argument('partner')
    sub.add_parser('list', help='partners, their keys (never the secrets) and grants, as JSON')
    key = sub.add_parser('key', help='issue or revoke an API key').add_subparsers(dest='action', required=True)
    p = key.add_parser('issue', help='issue a key; prints it once')
    p.add_argument('partner')
    p.add_argument('--label')
    p.add_argument('--days', type=int, help='expires after this many days (default: never)')
    p = key.add_parser('revoke', help='revoke a key by its id (the 16 hex digits after gmk_)')
    p.add_argument('key_id')
    p = sub.add_parser('grant', help='let a partner read (and with --write, write) a dataset')
    p.add_argument('partner')
    p.add_argument('dataset', help='a collection of pygeoapi-config.yml')
    p.add_argument('--write', action='store_true')
    p = sub.add_parser('revoke', help='take a dataset grant away')
    p.add_argument('partner')
    p.add_argument('dataset')
    args = ap.parse_args(argv)
    url = args.database_url or settings.database_url()
    try:
        if args.cmd == 'add':
            store.add_partner(url, args.partner, args.name)
            print(f'partner {args.partner} added')
        elif args.cmd == 'disable':
            store.disable_partner(url, args.partner)
            print(f'partner {args.partner} disabled')
        elif args.cmd == 'enable':
            store.enable_partner(url, args.partner)
            print(f'partner {args.partner} enabled')
        elif args.cmd == 'list':
            print(json.dumps(store.listing(url), indent=1, default=str, ensure_ascii=False))
        elif args.cmd == 'key' and args.action == 'issue':
            if args.days is not None and not 0 < args.days <= 36500:
                raise store.AccessError('--days must be a number of days from 1 to 36500')
            expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=args.days) \
                if args.days else None
            token, key_id, secret = tokens.new_key()
            store.add_key(url, args.partner, key_id, secret, args.label, expires)
            print(token)
            print(f'key {key_id} for {args.partner}' + (f', expires {expires:%Y-%m-%d}' if expires else '')
                  + ': give it as "Authorization: Bearer <key>"; it is not shown again', file=sys.stderr)
        elif args.cmd == 'key' and args.action == 'revoke':
            store.revoke_key(url, args.key_id)
            print(f'key {args.key_id} revoked')
        elif args.cmd == 'grant':
            datasets = _datasets()
            if args.dataset not in datasets:
                raise store.AccessError(f'{args.dataset!r} is not a collection of {settings.pygeoapi_config()}')
            if args.write and args.dataset not in _writable():
                raise store.AccessError(
                    f'{args.dataset} cannot be written: no feature type of the reference model '
                    f'describes it (writable: {", ".join(sorted(_writable()))})')
            store.grant(url, args.partner, args.dataset, args.write)
            default = 'open' if 'record' in datasets[args.dataset] else 'restricted'
            print(f'{args.partner} may read{" and write" if args.write else ""} {args.dataset} '
                  f'(diffusion: {policy.levels().get(args.dataset, default)})')
        elif args.cmd == 'revoke':
            store.revoke_grant(url, args.partner, args.dataset)
            print(f'{args.partner} no longer has a grant on {args.dataset}')
    except store.AccessError as err:
        print(f'geomayotte-partners: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
