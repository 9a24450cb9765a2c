import { createHash } from 'crypto';
import type { IDataObject, IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import type { OperationSpec, ParameterSpec } from './generated/catalog';
import { bridgeRequest, filenameOf } from './transport';

// The bridge serves at most 100 items a page; Return All follows next_cursor, within a bound.
const PAGE_SIZE = 100;
const MAX_PAGES = 1000;
const DEFAULT_PDF_NAME = 'lettre.pdf';

interface Request {
	path: IDataObject;
	query: IDataObject;
	body: IDataObject;
	header: IDataObject;
	fileNameFallback?: { target: string; name: string };
}

function isEmpty(value: unknown): boolean {
	return (
		value === undefined ||
		value === null ||
		value === '' ||
		(Array.isArray(value) && value.length === 0)
	);
}

/** Put `value` at a dotted path; digit segments make list items (`documents.0.url`). */
export function setPath(target: IDataObject, dotted: string, value: unknown): void {
	const parts = dotted.split('.');
	let node: IDataObject | unknown[] = target;
	parts.forEach((part, index) => {
		const last = index === parts.length - 1;
		const key: string | number = /^\d+$/.test(part) ? Number(part) : part;
		const container = node as Record<string | number, unknown>;
		if (last) {
			container[key] = value;
			return;
		}
		if (container[key] === undefined || container[key] === null) {
			container[key] = /^\d+$/.test(parts[index + 1]) ? [] : {};
		}
		node = container[key] as IDataObject;
	});
}

function place(request: Request, to: string, value: unknown): void {
	const [location, ...rest] = to.split('.');
	const path = rest.join('.');
	if (location === 'header' || location === 'path' || location === 'query') {
		request[location][path] = value as string;
	} else {
		setPath(request.body, path, value);
	}
}

/** The key that makes a retried execution send nothing twice: same execution, node and item. */
export function derivedIdempotencyKey(context: IExecuteFunctions, itemIndex: number): string | undefined {
	const executionId = context.getExecutionId();
	if (!executionId) return undefined;
	const node = context.getNode();
	return `n8n-${executionId}-${node.id || node.name}-${itemIndex}`;
}

/** A list of files (a batch's common attachments) as the bridge's documents. */
async function readFileList(
	context: IExecuteFunctions,
	name: string,
	itemIndex: number,
): Promise<IDataObject[]> {
	const source = context.getNodeParameter(`${name}Source`, itemIndex, 'none') as string;
	const split = (text: string) =>
		text
			.split(/[\s,]+/)
			.map((part) => part.trim())
			.filter(Boolean);
	if (source === 'url') {
		const urls = split(context.getNodeParameter(`${name}Urls`, itemIndex, '') as string);
		return urls.map((url, index) => ({ filename: `piece-jointe-${index + 1}.pdf`, url }));
	}
	if (source !== 'binary') return [];
	const properties = split(context.getNodeParameter(`${name}BinaryProperties`, itemIndex, 'data') as string);
	const documents: IDataObject[] = [];
	for (const [index, property] of properties.entries()) {
		const binary = context.helpers.assertBinaryData(itemIndex, property);
		const content = await context.helpers.getBinaryDataBuffer(itemIndex, property);
		documents.push({
			filename: binary.fileName || `piece-jointe-${index + 1}.pdf`,
			content_base64: content.toString('base64'),
		});
	}
	return documents;
}

async function readParameter(
	context: IExecuteFunctions,
	spec: OperationSpec,
	param: ParameterSpec,
	itemIndex: number,
	request: Request,
): Promise<void> {
	const to = param.to;
	if (param.kind === 'fileList') {
		if (!to) return;
		const documents = await readFileList(context, param.name, itemIndex);
		if (documents.length) place(request, to, documents);
		return;
	}
	if (param.kind === 'file') {
		if (!to) return;
		const source = context.getNodeParameter(`${param.name}Source`, itemIndex, 'binary') as string;
		if (source === 'url') {
			place(request, to, context.getNodeParameter(`${param.name}Url`, itemIndex) as string);
			return;
		}
		const property = context.getNodeParameter(`${param.name}BinaryProperty`, itemIndex, 'data') as string;
		const binary = context.helpers.assertBinaryData(itemIndex, property);
		const content = await context.helpers.getBinaryDataBuffer(itemIndex, property);
		// The catalogue says where the URL goes; the bytes go beside it as content_base64.
		place(request, to.replace(/[^.]+$/, 'content_base64'), content.toString('base64'));
		request.fileNameFallback = {
			target: to.replace(/[^.]+$/, 'filename'),
			name: binary.fileName || DEFAULT_PDF_NAME,
		};
		return;
	}
	let value: unknown;
	if (param.where === 'collection') {
		value = (context.getNodeParameter(spec.collection, itemIndex, {}) as IDataObject)[param.name];
	} else if (param.kind === 'locator') {
		value = context.getNodeParameter(param.name, itemIndex, '', { extractValue: true });
	} else {
		value = context.getNodeParameter(param.name, itemIndex, undefined);
	}
	if (param.kind === 'mapper') {
		const mapped = ((value as IDataObject | undefined)?.value ?? {}) as IDataObject;
		value = Object.fromEntries(Object.entries(mapped).filter(([, v]) => v !== undefined));
	} else if (param.kind === 'pairs') {
		const pairs = ((value as IDataObject | undefined)?.pairs ?? []) as IDataObject[];
		value = pairs.length
			? Object.fromEntries(pairs.map((pair) => [String(pair.key), pair.value]))
			: undefined;
	} else if (param.kind === 'idempotencyKey' && isEmpty(value)) {
		value = derivedIdempotencyKey(context, itemIndex);
	}
	if (isEmpty(value) || !to) return;
	place(request, to, value);
}

/** The request an operation makes for one input item (exported for the unit tests). */
export async function buildRequest(
	context: IExecuteFunctions,
	spec: OperationSpec,
	itemIndex: number,
): Promise<{ path: string; pathValues: IDataObject; qs: IDataObject; body?: IDataObject; headers: IDataObject }> {
	const request: Request = { path: {}, query: {}, body: {}, header: {} };
	for (const param of spec.params) {
		await readParameter(context, spec, param, itemIndex, request);
	}
	if (request.fileNameFallback) {
		const { target, name } = request.fileNameFallback;
		const [, ...rest] = target.split('.');
		const documents = request.body as IDataObject;
		const entry = rest.slice(0, -1).reduce<unknown>(
			(node, key) => (node as Record<string, unknown> | undefined)?.[key],
			documents,
		) as IDataObject | undefined;
		if (entry && isEmpty(entry.filename)) entry.filename = name;
	}
	const path = spec.path.replace(/\{(\w+)\}/g, (_, name: string) => {
		const value = request.path[name];
		if (isEmpty(value)) {
			throw new NodeOperationError(context.getNode(), `The parameter "${name}" is empty`, {
				itemIndex,
				description: 'Give the ID of the letter or consent this operation works on.',
			});
		}
		return encodeURIComponent(String(value));
	});
	const hasBody = spec.method !== 'GET' && spec.method !== 'DELETE';
	return {
		path,
		pathValues: request.path,
		qs: request.query,
		body: hasBody ? request.body : undefined,
		headers: request.header,
	};
}

async function listAll(
	context: IExecuteFunctions,
	spec: OperationSpec,
	itemIndex: number,
	built: { path: string; qs: IDataObject; headers: IDataObject },
): Promise<IDataObject[]> {
	const returnAll = context.getNodeParameter('returnAll', itemIndex, false) as boolean;
	const limit = returnAll ? Infinity : (context.getNodeParameter('limit', itemIndex, 50) as number);
	const results: IDataObject[] = [];
	let cursor: string | undefined;
	for (let page = 0; page < MAX_PAGES && results.length < limit; page++) {
		const qs: IDataObject = { ...built.qs, limit: Math.min(PAGE_SIZE, limit - results.length) };
		if (cursor) qs.cursor = cursor;
		const response = await bridgeRequest(
			context,
			{ method: spec.method, path: built.path, qs, headers: built.headers },
			itemIndex,
		);
		const body = response.body as IDataObject;
		results.push(...((body.data as IDataObject[]) ?? []));
		cursor = (body.next_cursor as string | null) ?? undefined;
		if (!cursor) break;
	}
	return results.slice(0, limit);
}

/** Run one operation for one input item; the items it outputs are paired with that item. */
export async function runOperation(
	context: IExecuteFunctions,
	spec: OperationSpec,
	itemIndex: number,
): Promise<INodeExecutionData[]> {
	const built = await buildRequest(context, spec, itemIndex);
	const paired = { pairedItem: { item: itemIndex } };
	if (spec.list) {
		const rows = await listAll(context, spec, itemIndex, built);
		return rows.map((json) => ({ json, ...paired }));
	}
	if (spec.firstOfList) {
		const response = await bridgeRequest(
			context,
			{ method: spec.method, path: built.path, qs: { ...built.qs, limit: 1 }, headers: built.headers },
			itemIndex,
		);
		const first = ((response.body as IDataObject).data as IDataObject[] | undefined)?.[0];
		return first ? [{ json: first, ...paired }] : [];
	}
	const response = await bridgeRequest(
		context,
		{ method: spec.method, path: built.path, qs: built.qs, body: built.body, headers: built.headers, binary: spec.binary },
		itemIndex,
	);
	if (!spec.binary) {
		return [{ json: (response.body ?? {}) as IDataObject, ...paired }];
	}
	const content = Buffer.from(response.body as ArrayBuffer);
	const fallback = `${spec.catalogKey.replace(/^download_/, '')}.${spec.path.endsWith('/evidence') ? 'zip' : 'pdf'}`;
	const fileName = filenameOf(response.headers, fallback);
	const mimeType = String(response.headers['content-type'] ?? 'application/octet-stream').split(';')[0];
	const property = context.getNodeParameter('binaryPropertyName', itemIndex, 'data') as string;
	const binary = await context.helpers.prepareBinaryData(content, fileName, mimeType);
	const json: IDataObject = {
		...built.pathValues,
		...built.qs,
		fileName,
		mimeType,
		size: content.length,
		sha256: createHash('sha256').update(content).digest('hex'),
	};
	for (const [name, value] of Object.entries(response.headers)) {
		if (name === 'x-template-version') json.templateVersion = Number(value);
	}
	return [{ json, binary: { [property]: binary }, ...paired }];
}

/**
 * A batch: ALL input items are one request, made once per node run. The node's parameters (template,
 * common values, attachments, idempotency key) are read for the first item; each row's fields for
 * its own item. The batch is the one output item, paired with every input item.
 */
export async function runBatch(
	context: IExecuteFunctions,
	spec: OperationSpec,
	itemCount: number,
): Promise<INodeExecutionData[]> {
	if (!spec.rows) throw new NodeOperationError(context.getNode(), `${spec.catalogKey} takes no rows`);
	const built = await buildRequest(context, spec, 0);
	const rows: IDataObject[] = [];
	for (let itemIndex = 0; itemIndex < itemCount; itemIndex++) {
		const row: IDataObject = {};
		const fields = context.getNodeParameter('rowFields', itemIndex, {}) as IDataObject;
		for (const param of spec.rows.params) {
			const value =
				param.where === 'rowFields'
					? fields[param.name]
					: context.getNodeParameter(param.name, itemIndex, undefined);
			if (param.kind === 'pairs') {
				// The row's template values as its data.<key> columns: the item's text goes as it is
				// (quotes, semicolons, new lines), never through JSON someone writes.
				const pairs = ((value as IDataObject | undefined)?.pairs ?? []) as IDataObject[];
				for (const pair of pairs) {
					const key = String(pair.key ?? '').trim();
					if (key && !isEmpty(pair.value)) row[`data.${key}`] = pair.value;
				}
			} else if (!isEmpty(value)) row[param.key] = value;
		}
		rows.push(row);
	}
	const body = built.body ?? {};
	setPath(body, spec.rows.to.replace(/^body\./, ''), rows);
	const response = await bridgeRequest(context, {
		method: spec.method,
		path: built.path,
		qs: built.qs,
		body,
		headers: built.headers,
	});
	const pairedItem = Array.from({ length: itemCount }, (_, item) => ({ item }));
	return [{ json: (response.body ?? {}) as IDataObject, pairedItem }];
}
