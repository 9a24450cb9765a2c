import { createHmac, timingSafeEqual } from 'crypto';

// Standard Webhooks (v1, symmetric): base64 HMAC-SHA256 of "{id}.{timestamp}.{raw body}" keyed with
// the base64-decoded bytes of the whsec_ secret; the header lists one or more "v1,<base64>".
export const TOLERANCE_SECONDS = 300;

export interface SignedDelivery {
	id: string;
	timestamp: string;
	signatures: string;
	rawBody: Buffer;
}

/** Why a delivery is refused, or undefined when it is signed by the holder of the secret. */
export function signatureProblem(
	secret: string | undefined,
	delivery: SignedDelivery,
	nowSeconds: number,
): string | undefined {
	if (!secret || !secret.startsWith('whsec_')) {
		return 'this trigger has no signing secret; unpublish and publish the workflow again';
	}
	if (!delivery.id || !delivery.signatures || !/^\d{1,12}$/.test(delivery.timestamp)) {
		return 'the delivery is not signed (webhook-id, webhook-timestamp, webhook-signature)';
	}
	if (Math.abs(nowSeconds - Number(delivery.timestamp)) > TOLERANCE_SECONDS) {
		return 'the signature timestamp is out of range';
	}
	const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
	const expected = createHmac('sha256', key)
		.update(`${delivery.id}.${delivery.timestamp}.`)
		.update(delivery.rawBody)
		.digest();
	const matches = delivery.signatures.split(' ').some((entry) => {
		const [version, value] = entry.split(',', 2);
		const given = Buffer.from(value ?? '', 'base64');
		return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
	});
	return matches ? undefined : 'the signature does not match';
}
