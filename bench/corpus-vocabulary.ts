/**
 * The vocabulary of bench/corpus.ts: the words, names, domains, mail programs, time zones and
 * attachment types its messages are made of. Changing any of it changes the corpus: bump
 * CORPUS_VERSION there.
 */

export const WORDS = (
    'the of and to in is that it for on with as was at by this be from or have an are not but had they which one you ' +
    'were all we when there can been has more if will would what so their about out up who them some could into then ' +
    'than time only other new these two may first any like now over such our very just also well where much before ' +
    'through back years good most those after because people must still between should made year same another work ' +
    'water village market school road bridge meeting council harvest rain season field goats maize beans coffee tea ' +
    'clinic nurse teacher pupils exam fees bus fare phone modem bundle data night cheap signal tower battery solar ' +
    'panel charge invoice receipt payment order delivery parcel post office letter photo photos report minutes agenda ' +
    'budget project grant proposal deadline friday monday tuesday wednesday thursday saturday sunday morning evening ' +
    'tomorrow yesterday week month please thanks thank regards kind best wishes hello dear friend family brother sister ' +
    'mother father uncle aunt cousin wedding funeral church mosque choir football match team score training coach ' +
    'weather dry wet hot cold wind dust road repair well pump tank borehole committee chairman secretary treasurer ' +
    'minutes attached find below above note remember forward reply soon later today update news plan list copy check ' +
    'price shilling dollar euro bank account transfer loan savings group cooperative milk cattle chicken eggs seedlings ' +
    'fertilizer tractor borrow return lend visit arrive leave travel town city hospital pharmacy medicine doctor health'
).split(/\s+/);

export const NON_ASCII_WORDS = [
    'café',
    'naïve',
    'über',
    'façade',
    'jalapeño',
    'crème',
    'brûlée',
    'Zürich',
    'São',
    'Paulo',
    'déjà',
    'vu',
    'fiancée',
    'smörgåsbord',
    'Ærø',
    'Kraków',
    'Łódź',
    'şeker',
    'ğüzel',
    'Ελλάδα',
    'Москва',
    'привет',
    '日本語',
    'mañana',
    'señor'
];

export const FIRST_NAMES = [
    'Amina',
    'Juma',
    'Wanjiru',
    'Otieno',
    'Grace',
    'Peter',
    'Fatuma',
    'Hassan',
    'Mary',
    'John',
    'Aisha',
    'David',
    'Esther',
    'Samuel',
    'Ruth',
    'Daniel',
    'Njeri',
    'Kamau',
    'Achieng',
    'Mwangi',
    'Lucy',
    'Joseph',
    'Halima',
    'Moses',
    'Sarah',
    'James'
];
export const LAST_NAMES = ['Njeri', 'Otieno', 'Mwangi', 'Kamau', 'Wanjiku', 'Odhiambo', 'Hassan', 'Mohamed', 'Kiptoo', 'Chebet', 'Achieng', 'Mutua', 'Wekesa', 'Smith', 'Brown', 'Taylor'];
export const NON_ASCII_NAMES = [
    'Zoë Ørsted',
    'José Núñez',
    'Łukasz Wiśniewski',
    'Anaïs Lefèvre',
    'Jürgen Müller',
    'Søren Kierkegård',
    'Çağla Yılmaz',
    'Renée Dubois',
    'Frédéric Chopin',
    'Ngũgĩ wa Thiong’o',
    '李雷',
    'Олег Петров'
];
export const DOMAINS = ['example.com', 'example.org', 'example.net', 'mail.example.co.ke', 'coop.example', 'school.example', 'clinic.example', 'lists.example.org', 'bank.example', 'shop.example'];
export const MAILERS = ['Mozilla Thunderbird 115.6', 'K-9 Mail 6.712', 'Microsoft Outlook 16.0', 'Apple Mail (2.3731)', 'Roundcube Webmail/1.6.5', 'Evolution 3.46'];
export const ZONES: [string, number][] = [
    ['+0000', 0],
    ['+0100', 60],
    ['+0300', 180],
    ['-0500', -300],
    ['+0530', 330],
    ['+0200', 120]
];
export const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
export const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export const ATTACHMENTS = [
    { type: 'application/pdf', ext: 'pdf', magic: '%PDF-1.5\n%\xe2\xe3\xcf\xd3\n' },
    { type: 'image/jpeg', ext: 'jpg', magic: '\xff\xd8\xff\xe0\x00\x10JFIF\x00' },
    { type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', ext: 'docx', magic: 'PK\x03\x04\x14\x00\x06\x00' },
    { type: 'image/png', ext: 'png', magic: '\x89PNG\r\n\x1a\n' }
];
