"""``geomayotte-catalogue``: check the metadata, synchronise the records, write the DCAT-AP
view, harvest a partner's catalogue (OGC API Records or CSW) or forget one."""
from __future__ import annotations

import argparse
import sys

import psycopg2

from geomayotte import commands, settings
from geomayotte.errors import GeoMayotteError


def _query(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition('=')
        if not sep or not key:
            raise SystemExit(f'geomayotte-catalogue: --query takes key=value, not {pair!r}')
        out[key] = value
    return out


@commands.friendly('geomayotte-catalogue')
def main(argv: list[str] | None = None) -> int:
    settings.apply_defaults()
    parser = argparse.ArgumentParser(
        prog='geomayotte-catalogue',
        description="The platform's catalogue (OGC API Records collection 'catalogue', DCAT-AP at "
                    '/collections/catalogue/dcat): one record per served collection, feature type '
                    'of the reference model and process, from config/datasets.yml and the data.')
    parser.add_argument('--database-url', default=None,
                        help='PostGIS database (default $DATABASE_URL or the private cluster)')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('check', help='check config/datasets.yml against what is served (no database)')
    sub.add_parser('sync', help='rebuild the local records from the metadata and the data '
                                '(also done after every geomayotte-load and at server start)')
    dc = sub.add_parser('dcat', help='print the DCAT-AP catalogue (one page)')
    dc.add_argument('--format', default='ttl', choices=['jsonld', 'rdf', 'ttl'],
                    help='default ttl (Turtle; the HTTP view defaults to JSON-LD)')
    dc.add_argument('--limit', type=int, default=1000)
    dc.add_argument('--offset', type=int, default=0)
    hv = sub.add_parser('harvest', help="harvest a partner's catalogue into ours (idempotent: "
                                        'reports added, updated, removed)')
    hv.add_argument('url', help='the partner: OGC API landing page, or CSW endpoint')
    hv.add_argument('--source', required=True, help='the partner\'s name (a-z, 0-9, -, _), kept '
                                                    'with every harvested record')
    hv.add_argument('--protocol', choices=['records', 'csw'], default='records')
    hv.add_argument('--collection', default=None,
                    help='records collection to harvest (default: the first the partner lists)')
    hv.add_argument('--query', action='append', metavar='KEY=VALUE',
                    help='extra query parameter for the partner (OGC API Records), repeatable')
    hv.add_argument('--page-size', type=int, default=50)
    hv.add_argument('--timeout', type=float, default=600,
                    help='seconds the partner may take to hand over its whole catalogue '
                         '(default 600; then nothing is written)')
    fg = sub.add_parser('forget', help='remove every record harvested from a source')
    fg.add_argument('--source', required=True)
    args = parser.parse_args(argv)
    url = args.database_url or settings.database_url()
    from geomayotte.catalogue import dcat, harvest, metadata, sync
    try:
        if args.command == 'check':
            cat = metadata.load()
            print(f'{metadata.datasets_path()}: {len(cat.resources)} records described, all served '
                  'collections, feature types and processes have their metadata')
        elif args.command == 'sync':
            print(f'catalogue: {sync.sync(url).summary()}')
        elif args.command == 'dcat':
            _, body = dcat.render({'f': args.format, 'limit': str(args.limit),
                                   'offset': str(args.offset)}, '', url)
            sys.stdout.write(body.decode('utf-8'))
        elif args.command == 'harvest':
            report = harvest.harvest(args.url, args.source, args.protocol, args.collection,
                                     _query(args.query), args.page_size, url, deadline=args.timeout)
            print(report.summary())
            for kind in ('added', 'updated', 'removed'):
                for rid in getattr(report, kind):
                    print(f'  {kind:<8} {rid}')
            for ident, reason in report.skipped:
                print(f'  skipped  {ident}: {reason}')
        elif args.command == 'forget':
            removed = harvest.forget(args.source, url)
            print(f'{args.source}: {len(removed)} records removed')
    except dcat.BadRequest as err:
        print(f'geomayotte-catalogue: {err}', file=sys.stderr)
        return 2
    except psycopg2.OperationalError:
        raise                      # commands.friendly: the database is not reachable
    except (GeoMayotteError, psycopg2.Error) as err:
        print(f'geomayotte-catalogue: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
