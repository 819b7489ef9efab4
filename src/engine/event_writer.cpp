#include "largedet/engine/event_writer.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>

#include "largedet/core/error.h"

namespace largedet::engine {
namespace {

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

uint32_t masked_crc(const void* data, size_t size) {
  uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <typename T>
void put_fixed(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // little-endian hosts, as protobuf's wire format
  out.append(bytes, sizeof(T));
}

// Length-delimited field: tag (field << 3 | 2), length, bytes.
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string event_header(double wall_time, int64_t step) {
  std::string event;
  put_varint(event, (1 << 3) | 1);  // wall_time: double
  put_fixed(event, wall_time);
  put_varint(event, 2 << 3);  // step: int64 varint
  put_varint(event, static_cast<uint64_t>(step));
  return event;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  static const auto table = make_crc_table();
  uint32_t crc = 0xffffffffu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

std::string encode_scalar_event(const std::string& tag, float value, int64_t step,
                                double wall_time) {
  std::string summary_value;
  put_bytes(summary_value, 1, tag);         // Summary.Value.tag
  put_varint(summary_value, (2 << 3) | 5);  // Summary.Value.simple_value: float
  put_fixed(summary_value, value);
  std::string summary;
  put_bytes(summary, 1, summary_value);  // Summary.value
  std::string event = event_header(wall_time, step);
  put_bytes(event, 5, summary);  // Event.summary
  return event;
}

EventWriter::EventWriter(const std::string& directory) {
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  path_ = directory + "/events.out.tfevents." +
          std::to_string(static_cast<int64_t>(now_seconds())) + "." + host + "." +
          std::to_string(::getpid());
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_)
    throw Error("cannot create TensorBoard event file", path_, "check the output directory");
  std::string event = event_header(now_seconds(), 0);
  put_bytes(event, 3, "brain.Event:2");  // Event.file_version
  write_record(event);
  flush();
}

EventWriter::~EventWriter() {
  if (file_) std::fclose(file_);
}

void EventWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  write_record(encode_scalar_event(tag, static_cast<float>(value), step, now_seconds()));
}

void EventWriter::flush() { std::fflush(file_); }

void EventWriter::write_record(const std::string& event) {
  std::string record;
  put_fixed(record, static_cast<uint64_t>(event.size()));
  put_fixed(record, masked_crc(record.data(), 8));
  record += event;
  put_fixed(record, masked_crc(event.data(), event.size()));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size())
    throw Error("write failed", path_, "check free disk space");
}

}  // namespace largedet::engine
