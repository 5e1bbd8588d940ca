-- A channel's last message id is derived from the (channel_id, message_id) index when the channel
-- is read; keeping a copy cost every message an UPDATE of its channel's row.
alter table channel drop column last_message_id;
