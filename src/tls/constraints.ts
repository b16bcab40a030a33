/**
 * The nameConstraints extension a new CA is made with (scope.ts says what the scope is and why).
 * Kept apart from scope.ts because it needs @peculiar/x509 and its ASN.1 modules, which only
 * issuing loads.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints, id_ce_nameConstraints } from '@peculiar/asn1-x509';
import { x509 } from './x509';
import type { CaScope } from './scope';

/** The critical nameConstraints extension that limits a CA to `scope`. */
export function nameConstraintsExtension(scope: CaScope): x509.Extension {
    const subtrees = [
        ...scope.dns.map(dNSName => new GeneralSubtree({ base: new GeneralName({ dNSName }) })),
        ...scope.ip.map(iPAddress => new GeneralSubtree({ base: new GeneralName({ iPAddress }) }))
    ];
    const value = AsnConvert.serialize(new NameConstraints({ permittedSubtrees: new GeneralSubtrees(subtrees) }));
    return new x509.Extension(id_ce_nameConstraints, true, value);
}
