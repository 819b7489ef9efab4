// TensorBoard event files of scalar summaries, written without TensorFlow or protobuf: each record
// is TFRecord-framed (length, masked CRC32C of the length, an Event protocol buffer, masked CRC32C
// of the data), and the Event/Summary messages are encoded by hand (they use five fields).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace largedet::engine {

class EventWriter {
 public:
  // Creates DIRECTORY/events.out.tfevents.<seconds>.<host>.<pid> (the name TensorBoard scans for)
  // and writes the file_version record.
  explicit EventWriter(const std::string& directory);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  void add_scalar(const std::string& tag, double value, int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);
  std::string path_;
  std::FILE* file_ = nullptr;
};

// CRC-32C (Castagnoli), as TFRecord uses; exposed for tests.
uint32_t crc32c(const void* data, size_t size);
// One serialized Event holding a single scalar summary; exposed for tests.
std::string encode_scalar_event(const std::string& tag, float value, int64_t step,
                                double wall_time);

}  // namespace largedet::engine
