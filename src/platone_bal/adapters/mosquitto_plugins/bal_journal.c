/*
 * bal_journal: a Mosquitto 2.0 plugin that writes every publish on the ingest topics to
 * an append-only journal before Mosquitto acknowledges it.
 *
 * Why: Mosquitto 2.0 sends the PUBACK of a QoS 1 publish before its state reaches disk
 * (it saves at the end of a loop iteration, or on autosave), so a Mosquitto SIGKILL
 * can lose messages their publishers already saw acknowledged. Mosquitto calls the
 * MOSQ_EVT_MESSAGE callback after the ACL check and before the PUBACK
 * (src/handle_publish.c), so a message written here is on record before its sender
 * is told it arrived. The BAL node replays closed journal segments and skips what it
 * already stored (platone_bal.services.journal_replay); a record here never
 * replaces Mosquitto's own delivery, it only covers what Mosquitto loses.
 *
 * One write(2) per message, into the page cache: that survives a crash of Mosquitto
 * (the case above); with `plugin_opt_fsync true` each record is also fdatasync'ed, which
 * survives the machine losing power at the price of a disk flush per message. If the
 * record cannot be written, the publish fails (Mosquitto disconnects the client
 * without acknowledging): nothing is acknowledged that is not on record.
 *
 * Segments: DIR/<start ns>-<n>.open while written, renamed to .closed when full
 * (plugin_opt_segment_bytes) and when Mosquitto stops. A segment left .open by a
 * Mosquitto that died is closed by the node before the next Mosquitto starts.
 *
 * Record (little-endian): "BALJ", u64 received (ns since the epoch), u8 qos,
 * u32 topic length, u32 payload length, topic bytes, payload bytes. A torn record at
 * the end of a segment (the process died inside write) is ignored by the reader: its
 * PUBACK had not been sent.
 *
 * Options: plugin_opt_dir (required), plugin_opt_prefix (default "platone/"),
 * plugin_opt_segment_bytes (default 64 MiB), plugin_opt_fsync (default false).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define HEADER_BYTES 21
#define DEFAULT_SEGMENT_BYTES (64UL * 1024 * 1024)

struct journal {
	mosquitto_plugin_id_t *identifier;
	char *dir;
	char *prefix;
	size_t prefix_len;
	unsigned long segment_bytes;
	int fsync;
	uint64_t started_ns;
	unsigned segment;
	int fd;
	unsigned long written;
	char open_path[4096];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void put_u32(unsigned char *at, uint32_t value)
{
	for(int i = 0; i < 4; i++) at[i] = (unsigned char)(value >> (8 * i));
}

static void put_u64(unsigned char *at, uint64_t value)
{
	for(int i = 0; i < 8; i++) at[i] = (unsigned char)(value >> (8 * i));
}

static int open_segment(struct journal *journal)
{
	int n = snprintf(journal->open_path, sizeof(journal->open_path), "%s/%020" PRIu64 "-%06u.open",
			journal->dir, journal->started_ns, journal->segment);
	if(n < 0 || (size_t)n >= sizeof(journal->open_path)) return -1;
	journal->fd = open(journal->open_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if(journal->fd < 0) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "bal_journal: cannot open %s: %s",
				journal->open_path, strerror(errno));
		return -1;
	}
	journal->written = 0;
	return 0;
}

/* Close the current segment and mark it for the node's replay. */
static int close_segment(struct journal *journal)
{
	if(journal->fd < 0) return 0;
	int rc = 0;
	if(fsync(journal->fd) != 0 || close(journal->fd) != 0) rc = -1;
	journal->fd = -1;
	char closed_path[4096];
	size_t len = strlen(journal->open_path);
	memcpy(closed_path, journal->open_path, len - strlen(".open"));
	strcpy(closed_path + len - strlen(".open"), ".closed");
	if(rename(journal->open_path, closed_path) != 0) rc = -1;
	if(rc != 0) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "bal_journal: cannot close %s: %s",
				journal->open_path, strerror(errno));
	}
	return rc;
}

static int write_all(int fd, struct iovec *iov, int count)
{
	while(count > 0) {
		ssize_t done = writev(fd, iov, count);
		if(done < 0) {
			if(errno == EINTR) continue;
			return -1;
		}
		while(count > 0 && (size_t)done >= iov->iov_len) {
			done -= (ssize_t)iov->iov_len;
			iov++;
			count--;
		}
		if(count > 0) {
			iov->iov_base = (char *)iov->iov_base + done;
			iov->iov_len -= (size_t)done;
		}
	}
	return 0;
}

static int on_message(int event, void *event_data, void *userdata)
{
	(void)event;
	struct mosquitto_evt_message *message = event_data;
	struct journal *journal = userdata;
	if(message->topic == NULL || strncmp(message->topic, journal->prefix, journal->prefix_len) != 0) {
		return MOSQ_ERR_SUCCESS;
	}
	if(journal->fd < 0 && open_segment(journal) != 0) return MOSQ_ERR_UNKNOWN;

	size_t topic_len = strlen(message->topic);
	unsigned char header[HEADER_BYTES];
	memcpy(header, "BALJ", 4);
	put_u64(header + 4, now_ns());
	header[12] = message->qos;
	put_u32(header + 13, (uint32_t)topic_len);
	put_u32(header + 17, message->payloadlen);
	struct iovec iov[3] = {
		{header, HEADER_BYTES},
		{message->topic, topic_len},
		{message->payload, message->payloadlen},
	};
	if(write_all(journal->fd, iov, message->payloadlen ? 3 : 2) != 0
			|| (journal->fsync && fdatasync(journal->fd) != 0)) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "bal_journal: cannot write to %s (%s): "
				"the publish is refused", journal->open_path, strerror(errno));
		return MOSQ_ERR_UNKNOWN;
	}
	journal->written += HEADER_BYTES + topic_len + message->payloadlen;
	if(journal->written >= journal->segment_bytes) {
		close_segment(journal);
		journal->segment++;
		/* the next message opens the next segment (and fails if it cannot) */
	}
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
	struct journal *journal = mosquitto_calloc(1, sizeof(*journal));
	if(journal == NULL) return MOSQ_ERR_NOMEM;
	journal->identifier = identifier;
	journal->fd = -1;
	journal->segment_bytes = DEFAULT_SEGMENT_BYTES;
	journal->started_ns = now_ns();
	const char *prefix = "platone/";
	for(int i = 0; i < option_count; i++) {
		if(!strcmp(options[i].key, "dir")) {
			journal->dir = options[i].value;
		}else if(!strcmp(options[i].key, "prefix")) {
			prefix = options[i].value;
		}else if(!strcmp(options[i].key, "segment_bytes")) {
			journal->segment_bytes = strtoul(options[i].value, NULL, 10);
		}else if(!strcmp(options[i].key, "fsync")) {
			journal->fsync = !strcmp(options[i].value, "true");
		}
	}
	if(journal->dir == NULL || journal->segment_bytes == 0) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "bal_journal: plugin_opt_dir is required");
		mosquitto_free(journal);
		return MOSQ_ERR_INVAL;
	}
	journal->dir = mosquitto_strdup(journal->dir);
	journal->prefix = mosquitto_strdup(prefix);
	journal->prefix_len = strlen(prefix);
	if(open_segment(journal) != 0) {
		mosquitto_free(journal->dir);
		mosquitto_free(journal->prefix);
		mosquitto_free(journal);
		return MOSQ_ERR_UNKNOWN;
	}
	*userdata = journal;
	mosquitto_log_printf(MOSQ_LOG_INFO, "bal_journal: journaling %s# in %s",
			journal->prefix, journal->dir);
	return mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, NULL, journal);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)options;
	(void)option_count;
	struct journal *journal = userdata;
	if(journal == NULL) return MOSQ_ERR_SUCCESS;
	mosquitto_callback_unregister(journal->identifier, MOSQ_EVT_MESSAGE, on_message, NULL);
	close_segment(journal);
	mosquitto_free(journal->dir);
	mosquitto_free(journal->prefix);
	mosquitto_free(journal);
	return MOSQ_ERR_SUCCESS;
}
