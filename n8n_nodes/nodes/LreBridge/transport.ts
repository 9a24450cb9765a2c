import type {
	IDataObject,
	IExecuteFunctions,
	IHookFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	IWebhookFunctions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

export const CREDENTIAL = 'lreBridgeApi';

export type BridgeContext = IExecuteFunctions | ILoadOptionsFunctions | IHookFunctions | IWebhookFunctions;

export interface BridgeRequest {
	method: IHttpRequestMethods;
	path: string;
	qs?: IDataObject;
	body?: IDataObject;
	headers?: IDataObject;
	binary?: boolean;
}

export interface BridgeResponse {
	statusCode: number;
	headers: IDataObject;
	body: unknown;
}

/** The bridge URL of the credential, without trailing slashes. */
export async function baseUrl(context: BridgeContext): Promise<string> {
	const credentials = await context.getCredentials(CREDENTIAL);
	return String(credentials.baseUrl ?? '').replace(/\/+$/, '');
}

function decodeBody(body: unknown): unknown {
	if (Buffer.isBuffer(body)) {
		const text = body.toString('utf8');
		try {
			return JSON.parse(text);
		} catch {
			return { message: text };
		}
	}
	if (typeof body === 'string') {
		try {
			return JSON.parse(body);
		} catch {
			return { message: body };
		}
	}
	return body;
}

/**
 * The bridge's error as a NodeApiError carrying its message and the field it names.
 * The bridge answers `{"error": {"code", "message", "field"}}` for every refusal.
 */
export function bridgeError(
	context: BridgeContext,
	response: BridgeResponse,
	itemIndex?: number,
): NodeApiError {
	const decoded = decodeBody(response.body) as IDataObject | undefined;
	const error = ((decoded && (decoded.error as IDataObject)) || decoded || {}) as IDataObject;
	const message =
		typeof error.message === 'string' && error.message
			? error.message
			: `The bridge answered HTTP ${response.statusCode}`;
	const field = typeof error.field === 'string' ? error.field : undefined;
	const code = typeof error.code === 'string' ? error.code : undefined;
	// A refused batch lists its bad rows (error.details): every one of them, up to 20, in the description.
	// (Only row problems: other 422s give details too, already said by the message.)
	const details = (Array.isArray(error.details) ? (error.details as IDataObject[]) : []).filter(
		(d) => d && typeof d === 'object' && 'row' in d,
	);
	const rows = details
		.slice(0, 20)
		.map((d) => `${d.row ? `row ${d.row}` : 'rows'}${d.column ? `, ${d.column}` : ''}: ${d.message}`);
	if (details.length > rows.length) rows.push(`and ${details.length - rows.length} more`);
	const description = [field ? `Field: ${field}` : '', code ? `Code: ${code}` : '', rows.join('; ')]
		.filter(Boolean)
		.join(' · ');
	return new NodeApiError(context.getNode(), (decoded ?? {}) as JsonObject, {
		message,
		description: description || undefined,
		httpCode: String(response.statusCode),
		itemIndex,
	});
}

/**
 * One call to the bridge, signed by the credential. HTTP errors are not thrown by n8n's helper
 * (ignoreHttpStatusErrors) so that the bridge's own message reaches the user unchanged.
 */
export async function bridgeRequest(
	context: BridgeContext,
	request: BridgeRequest,
	itemIndex?: number,
): Promise<BridgeResponse> {
	const options: IHttpRequestOptions = {
		method: request.method,
		url: `${await baseUrl(context)}${request.path}`,
		qs: request.qs,
		headers: { Accept: request.binary ? '*/*' : 'application/json', ...(request.headers ?? {}) },
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
		json: !request.binary,
	};
	if (request.body !== undefined) {
		options.body = request.body;
	}
	if (request.binary) {
		options.encoding = 'arraybuffer';
	}
	const response = (await context.helpers.httpRequestWithAuthentication.call(
		context,
		CREDENTIAL,
		options,
	)) as BridgeResponse;
	if (response.statusCode >= 400) {
		throw bridgeError(context, response, itemIndex);
	}
	return response;
}

/** `attachment; filename="x.pdf"` -> `x.pdf`. */
export function filenameOf(headers: IDataObject, fallback: string): string {
	const disposition = String(headers['content-disposition'] ?? '');
	const match = /filename="?([^";]+)"?/i.exec(disposition);
	return match ? match[1] : fallback;
}
