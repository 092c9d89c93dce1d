/*
 * bal_throttle: a Mosquitto 2.0 plugin that slows down password guessing on MQTT, as the
 * BAL's HTTP sign-in does: failed logins are counted per username and per source
 * address, and after a few a key is locked out for a time that doubles with each
 * further failure (1 s up to 15 min). A locked attempt is refused before its password
 * is looked at, and counts as one more failure.
 *
 * Loaded before the Dynamic Security plugin, so its MOSQ_EVT_BASIC_AUTH callback runs
 * first: it refuses a locked key or defers to Dynamic Security. Mosquitto 2.0 does not
 * tell a plugin how a login ended, but a refused CONNECT leaves the client without a
 * client id when it is disconnected (src/handle_connect.c frees it), and an accepted one
 * always has one: MOSQ_EVT_DISCONNECT tells failures from successes. A success clears
 * its username's failures (not its address's: one valid login must not whitewash
 * password spraying from that address).
 *
 * Options: plugin_opt_exempt (a username never throttled: the node's own service
 * account, whose password is a long random secret and whose lockout would stall
 * ingest), plugin_opt_user_free (5), plugin_opt_address_free (20), plugin_opt_longest
 * (900 s). State is in memory, in a fixed table (least recently failed keys are
 * forgotten first); a restart of Mosquitto forgets it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define SLOTS 8192
#define PROBES 16
#define KEY_BYTES 160
#define FORGET_AFTER 3600.0

struct entry {
	char key[KEY_BYTES];
	unsigned failures;
	double last;
	double until;
};

struct throttle {
	mosquitto_plugin_id_t *identifier;
	char *exempt;
	unsigned user_free;
	unsigned address_free;
	double longest;
	struct entry *table;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long hash(const char *text)
{
	unsigned long value = 14695981039346656037UL;
	for(; *text; text++) {
		value = (value ^ (unsigned char)*text) * 1099511628211UL;
	}
	return value;
}

/* The entry of `key`; with `create`, a new one in the first free (or forgotten) slot
 * near it, else in the nearby slot whose last failure is oldest. */
static struct entry *find(struct throttle *throttle, const char *key, bool create, double now)
{
	unsigned long start = hash(key) % SLOTS;
	struct entry *victim = NULL;
	bool victim_free = false;
	for(unsigned i = 0; i < PROBES; i++) {
		struct entry *slot = &throttle->table[(start + i) % SLOTS];
		bool free_slot = !slot->key[0] || (now - slot->last > FORGET_AFTER && now > slot->until);
		if(!free_slot && !strcmp(slot->key, key)) return slot;
		if(free_slot && !victim_free) {
			victim = slot;
			victim_free = true;
		}else if(!victim_free && (victim == NULL || slot->last < victim->last)) {
			victim = slot;
		}
	}
	if(!create) return NULL;
	memset(victim, 0, sizeof(*victim));
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	return victim;
}

static void key_of(char *out, const char *kind, const char *value)
{
	snprintf(out, KEY_BYTES, "%s:%s", kind, value ? value : "");
}

static double lockout(const struct throttle *throttle, unsigned failures, unsigned free_failures)
{
	if(failures < free_failures) return 0.0;
	unsigned doublings = failures - free_failures;
	if(doublings > 30) doublings = 30;
	double seconds = (double)(1UL << doublings);
	return seconds < throttle->longest ? seconds : throttle->longest;
}

static void failed(struct throttle *throttle, const char *key, unsigned free_failures, double now)
{
	struct entry *entry = find(throttle, key, true, now);
	if(entry == NULL) return;
	entry->failures++;
	entry->last = now;
	entry->until = now + lockout(throttle, entry->failures, free_failures);
}

static bool locked(struct throttle *throttle, const char *key, double now)
{
	struct entry *entry = find(throttle, key, false, now);
	return entry != NULL && now < entry->until;
}

static bool exempt(const struct throttle *throttle, const char *username)
{
	return throttle->exempt != NULL && username != NULL && !strcmp(username, throttle->exempt);
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	(void)event;
	struct mosquitto_evt_basic_auth *auth = event_data;
	struct throttle *throttle = userdata;
	if(exempt(throttle, auth->username)) return MOSQ_ERR_PLUGIN_DEFER;
	double now = now_s();
	char user[KEY_BYTES], address[KEY_BYTES];
	key_of(user, "user", auth->username);
	key_of(address, "address", mosquitto_client_address(auth->client));
	if(locked(throttle, user, now) || locked(throttle, address, now)) {
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "bal_throttle: login of %s from %s refused "
				"unchecked: too many failed logins", auth->username ? auth->username : "(none)",
				mosquitto_client_address(auth->client));
		return MOSQ_ERR_AUTH;  /* counted as a failure at its disconnect */
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	(void)event;
	struct mosquitto_evt_disconnect *disconnect = event_data;
	struct throttle *throttle = userdata;
	const char *username = mosquitto_client_username(disconnect->client);
	if(exempt(throttle, username)) return MOSQ_ERR_SUCCESS;
	double now = now_s();
	char user[KEY_BYTES], address[KEY_BYTES];
	key_of(user, "user", username);
	key_of(address, "address", mosquitto_client_address(disconnect->client));
	if(mosquitto_client_id(disconnect->client) != NULL) {  /* it was let in */
		struct entry *entry = find(throttle, user, false, now);
		if(entry != NULL) entry->key[0] = '\0';
		return MOSQ_ERR_SUCCESS;
	}
	failed(throttle, user, throttle->user_free, now);
	failed(throttle, address, throttle->address_free, now);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++) {
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	struct throttle *throttle = mosquitto_calloc(1, sizeof(*throttle));
	if(throttle == NULL) return MOSQ_ERR_NOMEM;
	throttle->table = mosquitto_calloc(SLOTS, sizeof(struct entry));
	if(throttle->table == NULL) {
		mosquitto_free(throttle);
		return MOSQ_ERR_NOMEM;
	}
	throttle->identifier = identifier;
	throttle->user_free = 5;
	throttle->address_free = 20;
	throttle->longest = 900.0;
	for(int i = 0; i < option_count; i++) {
		if(!strcmp(options[i].key, "exempt")) {
			throttle->exempt = mosquitto_strdup(options[i].value);
		}else if(!strcmp(options[i].key, "user_free")) {
			throttle->user_free = (unsigned)strtoul(options[i].value, NULL, 10);
		}else if(!strcmp(options[i].key, "address_free")) {
			throttle->address_free = (unsigned)strtoul(options[i].value, NULL, 10);
		}else if(!strcmp(options[i].key, "longest")) {
			throttle->longest = strtod(options[i].value, NULL);
		}
	}
	*userdata = throttle;
	int rc = mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, throttle);
	if(rc == MOSQ_ERR_SUCCESS) {
		rc = mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, throttle);
	}
	return rc;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)options;
	(void)option_count;
	struct throttle *throttle = userdata;
	if(throttle == NULL) return MOSQ_ERR_SUCCESS;
	mosquitto_callback_unregister(throttle->identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(throttle->identifier, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
	mosquitto_free(throttle->exempt);
	mosquitto_free(throttle->table);
	mosquitto_free(throttle);
	return MOSQ_ERR_SUCCESS;
}
