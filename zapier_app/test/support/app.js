'use strict';
// The app under test, its tester, and the bundle pieces every test needs.

const zapier = require('zapier-platform-core');

const App = require('../../index');
const { loadState } = require('./bridge');

const appTester = zapier.createAppTester(App);
const bridge = () => loadState();
const authData = () => ({ base_url: bridge().baseUrl, api_key: bridge().apiKey });

// z.errors.Error carries {message, code, status} as JSON in its message.
const appError = (error) => JSON.parse(error.message);

// Every field the shared layout and the "mise en demeure" template require.
const MISE_EN_DEMEURE = {
  tpl_expediteur_nom: 'SARL Dupont Rénovation',
  tpl_expediteur_adresse: '12 rue des Lilas\n69003 Lyon',
  tpl_destinataire_nom: 'Exemple SARL',
  tpl_destinataire_adresse: '5 avenue Jean-Jaurès\n75019 Paris',
  tpl_lieu: 'Lyon',
  tpl_numero_facture: 'F-2026-0412',
  tpl_montant_du: '1250.50',
  tpl_date_echeance: '2026-10-15',
  tpl_date_limite: '2026-12-11',
};

module.exports = { App, MISE_EN_DEMEURE, appError, appTester, authData, bridge };
