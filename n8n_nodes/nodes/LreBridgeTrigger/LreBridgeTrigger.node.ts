import type {
	IDataObject,
	IHookFunctions,
	INodeExecutionData,
	INodeProperties,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError, NodeConnectionTypes } from 'n8n-workflow';

import { EVENT_ID_KEYS, PROOF_KINDS, TRIGGER_EVENTS, TRIGGER_FILTERS } from '../LreBridge/generated/catalog';
import { bridgeRequest, filenameOf } from '../LreBridge/transport';
import { signatureProblem } from './signature';

interface HookState extends IDataObject {
	hookId?: string;
	secret?: string;
}

function wantedEvents(context: IHookFunctions | IWebhookFunctions): string[] {
	const chosen = context.getNodeParameter('events', []) as string[];
	return (chosen.length ? chosen : TRIGGER_EVENTS.map((e) => e.value)).slice().sort();
}

function wantedFilters(context: IHookFunctions | IWebhookFunctions): IDataObject {
	const given = context.getNodeParameter('filters', {}) as IDataObject;
	const filters: IDataObject = {};
	for (const filter of TRIGGER_FILTERS) {
		const value = given[filter.name];
		if (value !== undefined && value !== '') filters[filter.to.replace(/^body\.filters\./, '')] = value;
	}
	return filters;
}

function sameJson(a: unknown, b: unknown): boolean {
	const canonical = (value: unknown): string =>
		JSON.stringify(value, (_, v) =>
			v && typeof v === 'object' && !Array.isArray(v)
				? Object.fromEntries(Object.entries(v).sort(([x], [y]) => x.localeCompare(y)))
				: v,
		);
	return canonical(a) === canonical(b);
}

/** A delivery as the workflow sees it: for letter events, the event and the letter as it was then. */
export function eventItem(id: string, delivery: IDataObject): IDataObject {
	const type = String(delivery.type ?? '');
	const data = (delivery.data ?? {}) as IDataObject;
	if (!type.startsWith('letter.')) {
		// An account event: the EVENT's id (one item per event, as Zapier needs), the object's id under
		// its name (invitation_id, alert_id…), its other fields as they are (catalog.account_event_item).
		const idKey = EVENT_ID_KEYS[type] ?? `${type.split('.')[0]}_id`;
		const own = Object.fromEntries(
			Object.entries(data).filter(([key]) => !['id', 'type', 'occurred_at', idKey].includes(key)),
		);
		return { id, type, occurred_at: delivery.timestamp, [idKey]: data.id, ...own };
	}
	return {
		id,
		type,
		occurred_at: delivery.timestamp,
		letter_id: data.id,
		status: type.slice('letter.'.length),
		reference: data.reference ?? null,
		recipient: data.recipient ?? null,
		message: data.message ?? null,
		metadata: data.metadata ?? {},
		template: data.template ?? null,
		documents: data.documents ?? [],
		failure: data.failure ?? null,
		letter_created_at: data.created_at ?? null,
		deposited_at: data.deposited_at ?? null,
		completed_at: data.completed_at ?? null,
		proof_kind: PROOF_KINDS[type] ?? null,
	};
}

export class LreBridgeTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'LRE Bridge Trigger',
		name: 'lreBridgeTrigger',
		icon: { light: 'file:lreBridge.svg', dark: 'file:lreBridge.dark.svg' },
		group: ['trigger'],
		version: [1],
		subtitle: '={{($parameter["events"] || []).length ? $parameter["events"].join(", ") : "All events"}}',
		description: 'Starts the workflow when a registered letter changes status on the LRE Bridge',
		defaults: {
			name: 'LRE Bridge Trigger',
		},
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [
			{
				name: 'lreBridgeApi',
				required: true,
			},
		],
		webhooks: [
			{
				name: 'default',
				httpMethod: 'POST',
				responseMode: 'onReceived',
				path: 'webhook',
			},
		],
		properties: [
			{
				displayName: 'Events',
				name: 'events',
				type: 'multiOptions',
				options: TRIGGER_EVENTS,
				default: [],
				description: 'The events that start the workflow; leave empty for every event',
			},
			{
				displayName: 'Filters',
				name: 'filters',
				type: 'collection',
				placeholder: 'Add Filter',
				default: {},
				options: TRIGGER_FILTERS.map((filter) => {
					const property: IDataObject = { ...filter };
					delete property.to;
					return property as unknown as INodeProperties;
				}),
			},
			{
				displayName: 'Include Proof PDF',
				name: 'includeProof',
				type: 'boolean',
				default: false,
				description:
					'Whether to download the proof issued with the event (deposit, receipt, refusal…) as a binary file',
			},
			{
				displayName: 'Put Proof in Field',
				name: 'binaryPropertyName',
				type: 'string',
				default: 'data',
				hint: 'The name of the output binary field to put the proof in',
				displayOptions: { show: { includeProof: [true] } },
			},
		],
	};

	webhookMethods = {
		default: {
			// Finds this workflow's subscription on the bridge by its URL; true only when it is the one
			// whose secret we hold and it still asks for the chosen events and filters.
			async checkExists(this: IHookFunctions): Promise<boolean> {
				const url = this.getNodeWebhookUrl('default') as string;
				const state = this.getWorkflowStaticData('node') as HookState;
				const response = await bridgeRequest(this, {
					method: 'GET',
					path: '/v1/hooks',
					qs: { target_url: url },
				});
				const hook = (((response.body as IDataObject).data as IDataObject[]) ?? [])[0];
				if (!hook || hook.id !== state.hookId || !state.secret || hook.status !== 'active') {
					return false;
				}
				const events = ((hook.events as string[]) ?? []).slice().sort();
				return sameJson(events, wantedEvents(this)) && sameJson(hook.filters ?? {}, wantedFilters(this));
			},

			// Subscribes (the bridge updates a subscription it already has for this URL) and keeps the
			// hook's id and signing secret in the workflow's static data.
			async create(this: IHookFunctions): Promise<boolean> {
				const url = this.getNodeWebhookUrl('default') as string;
				const state = this.getWorkflowStaticData('node') as HookState;
				const response = await bridgeRequest(this, {
					method: 'POST',
					path: '/v1/hooks',
					body: { target_url: url, events: wantedEvents(this), filters: wantedFilters(this) },
				});
				const hook = response.body as IDataObject;
				let secret = hook.secret as string | undefined;
				if (!secret && hook.id === state.hookId && state.secret) {
					secret = state.secret;
				}
				if (!secret) {
					// An existing subscription we hold no secret for: only a rotation shows a new one.
					const rotated = await bridgeRequest(this, {
						method: 'POST',
						path: `/v1/hooks/${encodeURIComponent(String(hook.id))}/rotate`,
						body: { grace_period_seconds: 0 },
					});
					secret = (rotated.body as IDataObject).secret as string;
				}
				state.hookId = String(hook.id);
				state.secret = secret;
				return true;
			},

			// Removes the subscription this node created (and only that one).
			async delete(this: IHookFunctions): Promise<boolean> {
				const state = this.getWorkflowStaticData('node') as HookState;
				if (state.hookId) {
					try {
						await bridgeRequest(this, {
							method: 'DELETE',
							path: `/v1/hooks/${encodeURIComponent(state.hookId)}`,
						});
					} catch (error) {
						// Already gone on the bridge (404): nothing left to remove; anything else is reported.
						const gone = error instanceof NodeApiError && error.httpCode === '404';
						if (!gone) throw new NodeApiError(this.getNode(), error as JsonObject);
					}
				}
				delete state.hookId;
				delete state.secret;
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const request = this.getRequestObject();
		const state = this.getWorkflowStaticData('node') as HookState;
		const rawBody = (request as unknown as { rawBody?: Buffer }).rawBody;
		const problem = rawBody
			? signatureProblem(
					state.secret,
					{
						id: String(request.header('webhook-id') ?? ''),
						timestamp: String(request.header('webhook-timestamp') ?? ''),
						signatures: String(request.header('webhook-signature') ?? ''),
						rawBody,
					},
					Math.floor(Date.now() / 1000),
				)
			: 'the request has no body';
		if (problem) {
			// Refused before any execution starts: the bridge sees 401 and keeps the delivery failed.
			this.getResponseObject()
				.status(401)
				.json({ error: { code: 'invalid_signature', message: `Delivery refused: ${problem}.` } });
			return { noWebhookResponse: true };
		}
		const delivery = JSON.parse((rawBody as Buffer).toString('utf8')) as IDataObject;
		if (!wantedEvents(this).includes(String(delivery.type))) {
			return { webhookResponse: { received: true, ignored: true } };
		}
		const json = eventItem(String(request.header('webhook-id')), delivery);
		const item: INodeExecutionData = { json };
		const includeProof = this.getNodeParameter('includeProof', false) as boolean;
		const proofs = (((delivery.data as IDataObject | undefined)?.proofs as IDataObject[]) ?? []).map(
			(proof) => proof.kind,
		);
		if (includeProof && json.proof_kind && proofs.includes(json.proof_kind)) {
			const path = `/v1/letters/${encodeURIComponent(String(json.letter_id))}/proofs/${json.proof_kind}`;
			const response = await bridgeRequest(this, { method: 'GET', path, binary: true });
			const content = Buffer.from(response.body as ArrayBuffer);
			const property = this.getNodeParameter('binaryPropertyName', 'data') as string;
			item.binary = {
				[property]: await this.helpers.prepareBinaryData(
					content,
					filenameOf(response.headers, `${json.proof_kind}.pdf`),
					'application/pdf',
				),
			};
		}
		return { workflowData: [[item]] };
	}
}
