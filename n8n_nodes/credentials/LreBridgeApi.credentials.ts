import type {
	IAuthenticateGeneric,
	Icon,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

export class LreBridgeApi implements ICredentialType {
	name = 'lreBridgeApi';

	displayName = 'LRE Bridge API';

	icon: Icon = { light: 'file:../icons/lreBridge.svg', dark: 'file:../icons/lreBridge.dark.svg' };

	documentationUrl = 'https://github.com/lre-bridge/lre-bridge/blob/main/docs/n8n.md#create-the-credential';

	properties: INodeProperties[] = [
		{
			displayName: 'Bridge URL',
			name: 'baseUrl',
			type: 'string',
			default: '',
			required: true,
			placeholder: 'https://lre.example.com',
			description: 'The address of your LRE Bridge, without a trailing slash',
		},
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			required: true,
			description: 'An API key of your account on the bridge (lre-bridge keys create --account NAME)',
		},
	];

	// The bridge reads the key as a bearer token; n8n adds the header to every request it signs.
	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				Authorization: '=Bearer {{$credentials.apiKey}}',
			},
		},
	};

	// GET /v1/me answers 200 with the account for a valid key, 401 otherwise.
	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl.replace(/\\/+$/, "")}}',
			url: '/v1/me',
		},
	};
}
