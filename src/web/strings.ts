/**
 * Every string the web pages show, one table per language (English and French to start). A page
 * picks its table from the language the user chose at the foot of a page (remembered in a cookie),
 * else from the browser's Accept-Language; English when nothing matches. No page holds a word of
 * its own: a new language is one more table here (the compiler checks it has every string).
 */

export interface Strings {
    lang: string;
    /** The certificate authority page (/ca). */
    ca: CaStrings;
    loginTitle: string;
    username: string;
    password: string;
    loginButton: string;
    loginFailed: string;
    logout: string;
    hello(name: string): string;
    yourAddresses: string;
    connectTitle: string;
    connectAuto: string;
    connectManual: string;
    incoming: string;
    outgoing: string;
    server: string;
    port: string;
    security: string;
    sslTls: string;
    starttls: string;
    loginName: string;
    changePassword: string;
    currentPassword: string;
    newPassword: string;
    repeatPassword: string;
    passwordChanged: string;
    passwordMismatch: string;
    passwordLength(min: number, max: number): string;
    currentWrong: string;
    formExpired: string;
    notFound: string;
    tooLarge: string;
    failure: string;
    back: string;
    outgoingTitle: string;
    noOutgoing: string;
    to: string;
    subject: string;
    state: string;
    noSubject: string;
    queued(nextRun: string | null): string;
    sending: string;
    deferred(after: string | null, error: string | null): string;
    sent: string;
    failed(error: string | null): string;
    usageTitle: string;
    account: string;
    up: string;
    down: string;
    healthTitle: string;
    noAccounts: string;
    lastRun(at: string, errors: string[]): string;
    neverRun: string;
    failing(since: string, error: string): string;
    heldTitle: string;
    heldText: string;
    folder: string;
    fetchButton: string;
    fetchQueued: string;
    fetchGone: string;
    adminTitle: string;
    adminLink: string;
    forbidden: string;
    uplinkTitle: string;
    lastRunLine(at: string, status: string, message: string | null): string;
    nextRunLine(at: string | null): string;
    queueTitle: string;
    user: string;
    retry: string;
    drop: string;
    retried: string;
    dropped: string;
    queueGone: string;
    usersTitle: string;
    messages: string;
    storage: string;
    noPassword: string;
    diskLine(free: string, total: string): string;
    /** The language's own name, for the switch at the foot of each page. */
    languageName: string;
    runStatus(status: string): string;
    syncNow: string;
    syncStarted: string;
    syncBusy: string;
    syncNotReady: string;
    syncTitle: string;
    syncWatch: string;
    syncRefreshing: string;
    syncStartedBy(trigger: string, at: string): string;
    syncStarting: string;
    phase(phase: 'waiting' | 'send' | 'receive' | 'done'): string;
    progressFigures(messagesIn: number, messagesOut: number, down: string, up: string, seconds: number): string;
    syncFinished(status: string, bytes: string, message: string | null): string;
    syncFailed(error: string): string;
    syncNone: string;
    historyTitle: string;
    perDayTitle: string;
    perMonthTitle: string;
    budgetDay: string;
    budgetMonth: string;
    noBudget: string;
    noHistory: string;
    otherAccounts: string;
    moreInQueue(count: number): string;
    runsTitle: string;
    started: string;
    trigger: string;
    result: string;
    period: string;
    figures: string;
}

/** The /ca page: the local CA's download and how to install it on each system (src/web/ca.ts). */
export interface CaStrings {
    title: string;
    intro(hostname: string): string;
    fingerprint: string;
    fingerprintCheck: string;
    downloads: string;
    crt: string;
    pem: string;
    mobileconfig: string;
    stepsTitle: string;
    /** Per system: its name, the steps, and a command to type when there is one. */
    steps: { system: string; text: string; command?: string }[];
    none: string;
    profileDescription: string;
}

const CA_EN: CaStrings = {
    title: 'Trust this gateway’s certificate',
    intro: hostname =>
        `Your mail app talks to ${hostname} over an encrypted link. Install this certificate authority once on each phone or computer, and your mail app connects with no security warning from then on.`,
    fingerprint: 'SHA-256 fingerprint',
    fingerprintCheck: 'When your device shows a fingerprint, check that it is this one.',
    downloads: 'Download',
    crt: 'Certificate (.crt): Android, Windows, macOS',
    pem: 'Certificate (.pem): Linux, Thunderbird',
    mobileconfig: 'Profile (.mobileconfig): iPhone, iPad, Mac',
    stepsTitle: 'Installing it',
    steps: [
        {
            system: 'Android',
            text: 'Download the .crt file. Open Settings → Security (or Security & privacy) → More security settings → Encryption & credentials → Install a certificate → CA certificate, tap “Install anyway” and choose the downloaded file. Thunderbird for Android and K-9 Mail then trust it.'
        },
        {
            system: 'Windows',
            text: 'Download the .crt file and open it. Choose Install Certificate → Current User → “Place all certificates in the following store” → Browse → Trusted Root Certification Authorities → Finish, and answer Yes to the warning.'
        },
        {
            system: 'iPhone, iPad',
            text: 'Open this page in Safari and download the profile; allow it. Open Settings → Profile Downloaded → Install. Then Settings → General → About → Certificate Trust Settings, and turn on full trust for the mailmule CA.'
        },
        {
            system: 'macOS',
            text: 'Download the .crt file and open it: Keychain Access adds it. Double-click “mailmule CA” there, open Trust, set “When using this certificate” to Always Trust, close the window and confirm with your password. (Or install the profile from System Settings → Privacy & Security → Profiles.)'
        },
        {
            system: 'Linux (Debian, Ubuntu, Raspberry Pi OS)',
            text: 'Download the .pem file, then in a terminal:',
            command: 'sudo cp mailmule-ca.pem /usr/local/share/ca-certificates/mailmule-ca.crt && sudo update-ca-certificates'
        },
        {
            system: 'Thunderbird (its own list, on every system)',
            text: 'Download the .pem file. In Thunderbird: Settings → Privacy & Security → Certificates → Manage Certificates → Authorities → Import, choose the file, tick “This certificate can identify websites” and press OK.'
        }
    ],
    none: 'This gateway serves a certificate the administrator provided: there is nothing to install here.',
    profileDescription: 'Lets this device trust the mail gateway on the village network.'
};

const CA_FR: CaStrings = {
    title: 'Faire confiance au certificat de la passerelle',
    intro: hostname =>
        `Votre application de messagerie parle à ${hostname} par une liaison chiffrée. Installez cette autorité de certification une fois sur chaque téléphone ou ordinateur : ensuite, votre application se connecte sans avertissement de sécurité.`,
    fingerprint: 'Empreinte SHA-256',
    fingerprintCheck: 'Quand votre appareil affiche une empreinte, vérifiez que c’est celle-ci.',
    downloads: 'Télécharger',
    crt: 'Certificat (.crt) : Android, Windows, macOS',
    pem: 'Certificat (.pem) : Linux, Thunderbird',
    mobileconfig: 'Profil (.mobileconfig) : iPhone, iPad, Mac',
    stepsTitle: 'L’installer',
    steps: [
        {
            system: 'Android',
            text: 'Téléchargez le fichier .crt. Ouvrez Paramètres → Sécurité (ou Sécurité et confidentialité) → Autres paramètres de sécurité → Chiffrement et identifiants → Installer un certificat → Certificat CA, touchez « Installer quand même » et choisissez le fichier téléchargé. Thunderbird pour Android et K-9 Mail lui font alors confiance.'
        },
        {
            system: 'Windows',
            text: 'Téléchargez le fichier .crt et ouvrez-le. Choisissez Installer le certificat → Utilisateur actuel → « Placer tous les certificats dans le magasin suivant » → Parcourir → Autorités de certification racines de confiance → Terminer, et répondez Oui à l’avertissement.'
        },
        {
            system: 'iPhone, iPad',
            text: 'Ouvrez cette page dans Safari et téléchargez le profil ; autorisez-le. Ouvrez Réglages → Profil téléchargé → Installer. Puis Réglages → Général → Informations → Réglages des certificats, et activez la confiance totale pour « mailmule CA ».'
        },
        {
            system: 'macOS',
            text: 'Téléchargez le fichier .crt et ouvrez-le : Trousseaux d’accès l’ajoute. Double-cliquez sur « mailmule CA », ouvrez Se fier, choisissez Toujours approuver pour « Lors de l’utilisation de ce certificat », fermez la fenêtre et confirmez avec votre mot de passe. (Ou installez le profil depuis Réglages Système → Confidentialité et sécurité → Profils.)'
        },
        {
            system: 'Linux (Debian, Ubuntu, Raspberry Pi OS)',
            text: 'Téléchargez le fichier .pem, puis dans un terminal :',
            command: 'sudo cp mailmule-ca.pem /usr/local/share/ca-certificates/mailmule-ca.crt && sudo update-ca-certificates'
        },
        {
            system: 'Thunderbird (sa propre liste, sur tout système)',
            text: 'Téléchargez le fichier .pem. Dans Thunderbird : Paramètres → Vie privée et sécurité → Certificats → Gérer les certificats → Autorités → Importer, choisissez le fichier, cochez « Confirmer cette AC pour identifier des sites web » et validez.'
        }
    ],
    none: 'Cette passerelle sert un certificat fourni par l’administrateur : il n’y a rien à installer ici.',
    profileDescription: 'Permet à cet appareil de faire confiance à la passerelle de messagerie du réseau du village.'
};

const en: Strings = {
    lang: 'en',
    ca: CA_EN,
    loginTitle: 'Log in',
    username: 'User name or address',
    password: 'Password',
    loginButton: 'Log in',
    loginFailed: 'Wrong user name or password.',
    logout: 'Log out',
    hello: name => `Hello, ${name}`,
    yourAddresses: 'Your addresses',
    connectTitle: 'Setting up your mail app',
    connectAuto: 'In Thunderbird or K-9 Mail, type your address and your password: the settings are found by themselves.',
    connectManual: 'If your app asks for them, these are the settings:',
    incoming: 'Incoming mail (IMAP)',
    outgoing: 'Outgoing mail (SMTP)',
    server: 'Server',
    port: 'Port',
    security: 'Security',
    sslTls: 'SSL/TLS',
    starttls: 'STARTTLS',
    loginName: 'User name',
    changePassword: 'Change your password',
    currentPassword: 'Current password',
    newPassword: 'New password',
    repeatPassword: 'New password again',
    passwordChanged: 'Your password is changed. Type the new one in your mail app when it asks.',
    passwordMismatch: 'The two new passwords are not the same.',
    passwordLength: (min, max) => `The new password needs between ${min} and ${max} characters.`,
    currentWrong: 'The current password is wrong.',
    formExpired: 'This form has expired. Please try again.',
    notFound: 'There is no such page.',
    tooLarge: 'That request is too large.',
    failure: 'Something went wrong. The administrator can see what in the log.',
    back: 'Back',
    outgoingTitle: 'Your outgoing mail',
    noOutgoing: 'Nothing waiting, nothing sent lately.',
    to: 'To',
    subject: 'Subject',
    state: 'State',
    noSubject: '(no subject)',
    queued: next => (next ? `Waiting for the next uplink, at ${next}` : 'Waiting for the next uplink'),
    sending: 'Being sent now',
    deferred: (after, error) => `Not sent yet${error ? ` (${error})` : ''}; tried again at the first uplink${after ? ` after ${after}` : ''}`,
    sent: 'Sent',
    failed: error => `Refused by the provider${error ? `: ${error}` : ''}`,
    usageTitle: 'Your use of the link this month',
    account: 'Account',
    up: 'Sent',
    down: 'Received',
    healthTitle: 'Your upstream accounts',
    noAccounts: 'You have no upstream account: your mail stays in the village.',
    lastRun: (at, errors) => `Last uplink ${at}: ${errors.length ? errors.join('; ') : 'all well'}`,
    neverRun: 'No uplink has run yet',
    failing: (since, error) => `The provider refuses the login since ${since}: ${error}`,
    heldTitle: 'Large messages left upstream',
    heldText: 'These arrived as their text only, to spare the link. Ask for one and the next uplink brings it whole and puts it back in its folder.',
    folder: 'Folder',
    fetchButton: 'Fetch at the next uplink',
    fetchQueued: 'Asked for: the next uplink brings it whole.',
    fetchGone: 'That message is no longer here.',
    adminTitle: 'Gateway status',
    adminLink: 'Gateway status (admin)',
    forbidden: 'This page is for the administrator.',
    uplinkTitle: 'Uplink',
    lastRunLine: (at, status, message) => `Last run ${at}: ${status}${message ? ` (${message})` : ''}`,
    nextRunLine: at => (at ? `Next run: ${at}` : 'No scheduled run'),
    queueTitle: 'Queue',
    user: 'User',
    retry: 'Retry at the next uplink',
    drop: 'Drop',
    retried: 'It goes at the next uplink.',
    dropped: 'Dropped.',
    queueGone: 'That entry is gone, or being sent right now.',
    usersTitle: 'Users and storage',
    messages: 'Messages',
    storage: 'Storage',
    noPassword: 'no password yet',
    diskLine: (free, total) => `Disk: ${free} free of ${total}`,
    languageName: 'English',
    runStatus: status => ({ ok: 'all well', partial: 'partly done', failed: 'failed', skipped: 'skipped', running: 'running' })[status] ?? status,
    syncNow: 'Sync now',
    syncStarted: 'The uplink run has started.',
    syncBusy: 'An uplink run is already going on.',
    syncNotReady: 'mailmule is starting or stopping; try again in a moment.',
    syncTitle: 'Uplink run',
    syncWatch: 'Follow the run in progress',
    syncRefreshing: 'This page refreshes by itself every 2 seconds while the run goes on.',
    syncStartedBy: (trigger, at) => `Started ${at} (${trigger})`,
    syncStarting: 'Starting: bringing the link up, checking the budget…',
    phase: phase => ({ waiting: 'waiting', send: 'sending', receive: 'receiving', done: 'done' })[phase],
    progressFigures: (messagesIn, messagesOut, down, up, seconds) => `${messagesIn} in, ${messagesOut} out · ${down} down, ${up} up · ${seconds} s`,
    syncFinished: (status, bytes, message) => `Finished: ${status}, ${bytes} on the wire${message ? ` (${message})` : ''}`,
    syncFailed: error => `The run stopped: ${error}`,
    syncNone: 'No uplink run since mailmule started.',
    historyTitle: 'Use of the link',
    perDayTitle: 'Bytes per day and account, last 31 days',
    perMonthTitle: 'Bytes per month and account, last 12 months',
    budgetDay: 'daily budget',
    budgetMonth: 'daily budget × days in the month',
    noBudget: 'No daily budget is set (uplink.budget.perDay in mailmule.yaml).',
    noHistory: 'No uplink run has carried any bytes yet.',
    otherAccounts: 'the other accounts',
    moreInQueue: count => `… and ${count} older (\`mailmule queue\` lists them all).`,
    runsTitle: 'Recent runs',
    started: 'Started',
    trigger: 'Started by',
    result: 'Result',
    period: 'Period',
    figures: 'The figures'
};

const fr: Strings = {
    lang: 'fr',
    ca: CA_FR,
    loginTitle: 'Connexion',
    username: 'Nom d’utilisateur ou adresse',
    password: 'Mot de passe',
    loginButton: 'Se connecter',
    loginFailed: 'Nom d’utilisateur ou mot de passe incorrect.',
    logout: 'Se déconnecter',
    hello: name => `Bonjour, ${name}`,
    yourAddresses: 'Vos adresses',
    connectTitle: 'Configurer votre messagerie',
    connectAuto: 'Dans Thunderbird ou K-9 Mail, saisissez votre adresse et votre mot de passe : les réglages se trouvent tout seuls.',
    connectManual: 'Si votre application les demande, voici les réglages :',
    incoming: 'Courrier entrant (IMAP)',
    outgoing: 'Courrier sortant (SMTP)',
    server: 'Serveur',
    port: 'Port',
    security: 'Sécurité',
    sslTls: 'SSL/TLS',
    starttls: 'STARTTLS',
    loginName: 'Nom d’utilisateur',
    changePassword: 'Changer votre mot de passe',
    currentPassword: 'Mot de passe actuel',
    newPassword: 'Nouveau mot de passe',
    repeatPassword: 'Nouveau mot de passe (encore)',
    passwordChanged: 'Votre mot de passe est changé. Saisissez le nouveau dans votre messagerie quand elle le demande.',
    passwordMismatch: 'Les deux nouveaux mots de passe ne sont pas identiques.',
    passwordLength: (min, max) => `Le nouveau mot de passe doit avoir entre ${min} et ${max} caractères.`,
    currentWrong: 'Le mot de passe actuel est incorrect.',
    formExpired: 'Ce formulaire a expiré. Veuillez réessayer.',
    notFound: 'Cette page n’existe pas.',
    tooLarge: 'Cette requête est trop grande.',
    failure: 'Une erreur est survenue. L’administrateur peut voir laquelle dans le journal.',
    back: 'Retour',
    outgoingTitle: 'Votre courrier sortant',
    noOutgoing: 'Rien en attente, rien envoyé récemment.',
    to: 'À',
    subject: 'Objet',
    state: 'État',
    noSubject: '(sans objet)',
    queued: next => (next ? `En attente de la prochaine connexion, à ${next}` : 'En attente de la prochaine connexion'),
    sending: 'En cours d’envoi',
    deferred: (after, error) => `Pas encore envoyé${error ? ` (${error})` : ''} ; nouvel essai à la première connexion${after ? ` après ${after}` : ''}`,
    sent: 'Envoyé',
    failed: error => `Refusé par le fournisseur${error ? ` : ${error}` : ''}`,
    usageTitle: 'Votre usage de la liaison ce mois-ci',
    account: 'Compte',
    up: 'Envoyé',
    down: 'Reçu',
    healthTitle: 'Vos comptes en ligne',
    noAccounts: 'Vous n’avez pas de compte en ligne : votre courrier reste au village.',
    lastRun: (at, errors) => `Dernière connexion ${at} : ${errors.length ? errors.join(' ; ') : 'tout va bien'}`,
    neverRun: 'Aucune connexion encore',
    failing: (since, error) => `Le fournisseur refuse la connexion depuis ${since} : ${error}`,
    heldTitle: 'Gros messages restés en ligne',
    heldText: 'Seul leur texte est arrivé, pour ménager la liaison. Demandez-en un : la prochaine connexion l’apporte en entier et le remet dans son dossier.',
    folder: 'Dossier',
    fetchButton: 'Récupérer à la prochaine connexion',
    fetchQueued: 'Demandé : la prochaine connexion l’apporte en entier.',
    fetchGone: 'Ce message n’est plus là.',
    adminTitle: 'État de la passerelle',
    adminLink: 'État de la passerelle (administration)',
    forbidden: 'Cette page est réservée à l’administrateur.',
    uplinkTitle: 'Liaison',
    lastRunLine: (at, status, message) => `Dernière connexion ${at} : ${status}${message ? ` (${message})` : ''}`,
    nextRunLine: at => (at ? `Prochaine connexion : ${at}` : 'Aucune connexion programmée'),
    queueTitle: 'File d’attente',
    user: 'Utilisateur',
    retry: 'Réessayer à la prochaine connexion',
    drop: 'Supprimer',
    retried: 'Il partira à la prochaine connexion.',
    dropped: 'Supprimé.',
    queueGone: 'Ce message n’est plus là, ou il part en ce moment.',
    usersTitle: 'Utilisateurs et stockage',
    messages: 'Messages',
    storage: 'Stockage',
    noPassword: 'pas encore de mot de passe',
    diskLine: (free, total) => `Disque : ${free} libres sur ${total}`,
    languageName: 'Français',
    runStatus: status => ({ ok: 'tout va bien', partial: 'en partie', failed: 'échec', skipped: 'sautée', running: 'en cours' })[status] ?? status,
    syncNow: 'Synchroniser maintenant',
    syncStarted: 'La connexion a commencé.',
    syncBusy: 'Une connexion est déjà en cours.',
    syncNotReady: 'mailmule démarre ou s’arrête ; réessayez dans un instant.',
    syncTitle: 'Connexion en cours',
    syncWatch: 'Suivre la connexion en cours',
    syncRefreshing: 'Cette page se met à jour toute seule toutes les 2 secondes pendant la connexion.',
    syncStartedBy: (trigger, at) => `Commencée ${at} (${trigger})`,
    syncStarting: 'Démarrage : ouverture de la liaison, vérification du budget…',
    phase: phase => ({ waiting: 'en attente', send: 'envoi', receive: 'réception', done: 'terminé' })[phase],
    progressFigures: (messagesIn, messagesOut, down, up, seconds) => `${messagesIn} reçus, ${messagesOut} envoyés · ${down} descendus, ${up} montés · ${seconds} s`,
    syncFinished: (status, bytes, message) => `Terminée : ${status}, ${bytes} sur la liaison${message ? ` (${message})` : ''}`,
    syncFailed: error => `La connexion s’est arrêtée : ${error}`,
    syncNone: 'Aucune connexion depuis le démarrage de mailmule.',
    historyTitle: 'Usage de la liaison',
    perDayTitle: 'Octets par jour et par compte, 31 derniers jours',
    perMonthTitle: 'Octets par mois et par compte, 12 derniers mois',
    budgetDay: 'budget quotidien',
    budgetMonth: 'budget quotidien × jours du mois',
    noBudget: 'Aucun budget quotidien n’est fixé (uplink.budget.perDay dans mailmule.yaml).',
    noHistory: 'Aucune connexion n’a encore transporté d’octets.',
    otherAccounts: 'les autres comptes',
    moreInQueue: count => `… et ${count} plus anciens (\`mailmule queue\` les liste tous).`,
    runsTitle: 'Connexions récentes',
    started: 'Début',
    trigger: 'Lancée par',
    result: 'Résultat',
    period: 'Période',
    figures: 'Les chiffres'
};

const TABLES: Record<string, Strings> = { en, fr };

/** The languages there is a table for, by code. */
export const LANGUAGES: readonly string[] = Object.keys(TABLES);

/** The table for a language code (`?lang=` or the cookie that remembers it), or null. */
export function stringsNamed(code: string | undefined): Strings | null {
    return code && Object.hasOwn(TABLES, code) ? TABLES[code] : null;
}

/** The table for an Accept-Language header: the first language, by preference, that has one. */
export function stringsFor(acceptLanguage: string | undefined): Strings {
    const wanted = (acceptLanguage ?? '')
        .slice(0, 500)
        .split(',')
        .map((part, index) => {
            const [tag, ...params] = part.trim().split(';');
            const q = params.map(p => /^\s*q=([0-9.]+)\s*$/.exec(p)).find(Boolean);
            return { lang: tag.trim().toLowerCase().split('-')[0], q: q ? Number(q[1]) : 1, index };
        })
        .filter(entry => entry.lang && entry.q > 0)
        .sort((a, b) => b.q - a.q || a.index - b.index);
    for (const entry of wanted) {
        if (Object.hasOwn(TABLES, entry.lang)) return TABLES[entry.lang];
    }
    return en;
}
