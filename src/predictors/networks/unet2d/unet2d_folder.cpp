// find_unet2d_files: the files of a diffusers model or pipeline folder.
#include "unet2d_folder.h"

#include <cctype>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "io/file_input.h"
#include "io/strict_json.h"

namespace ddpm::detail {
namespace {

namespace fs = std::filesystem;

bool is_file(const fs::path& p) {
  std::error_code error;
  return fs::is_regular_file(p, error);
}

// A pipeline's model_index.json names its unet's class: ["diffusers", "UNet2DModel"].
void check_model_index(const fs::path& index) {
  const nlohmann::json j = parse_json(read_file_bounded(index.string(), kMaxJsonBytes, "model_index.json"), index.string());
  if (!j.is_object()) throw Error(index.string() + " is not a JSON object");
  const auto unet = j.find("unet");
  if (unet == j.end()) throw Error(index.string() + " has no \"unet\": ddpm samples pipelines with a UNet2DModel");
  if (!unet->is_array() || unet->size() != 2 || !(*unet)[1].is_string() ||
      (*unet)[1].get<std::string>() != "UNet2DModel") {
    throw Error(index.string() + " \"unet\" is " + unet->dump() + ": ddpm loads a UNet2DModel");
  }
}

}  // namespace

bool is_diffusers_folder(const std::string& path) {
  std::error_code error;
  return fs::is_directory(path, error) || diffusers_file_of_folder(path);
}

bool diffusers_file_of_folder(const std::string& path) {
  const fs::path p(path);
  std::error_code error;
  return fs::is_regular_file(p, error) && (p.filename() == "config.json" || p.filename() == "model_index.json");
}

UNet2DFiles find_unet2d_files(const std::string& folder) {
  // A folder's config.json or model_index.json stands for the folder.
  const fs::path root = diffusers_file_of_folder(folder) ? fs::path(folder).parent_path() : fs::path(folder);
  std::error_code error;
  if (!fs::is_directory(root.empty() ? fs::path(".") : root, error)) throw Error(folder + ": not a folder");
  fs::path unet = root;
  UNet2DFiles files;
  if (is_file(root / "model_index.json")) {
    check_model_index(root / "model_index.json");
    unet = root / "unet";
    const fs::path scheduler = root / "scheduler" / "scheduler_config.json";
    if (!is_file(scheduler)) {
      throw Error(folder + ": a pipeline folder without scheduler/scheduler_config.json");
    }
    files.scheduler_config = scheduler.string();
  }
  if (!is_file(unet / "config.json")) {
    throw Error(unet.string() + ": no config.json (a diffusers UNet2DModel folder has config.json and "
                                "diffusion_pytorch_model.safetensors; a pipeline folder has model_index.json)");
  }
  files.config = (unet / "config.json").string();
  files.unet_folder = unet.string();
  return files;
}

std::string find_unet2d_weights(const UNet2DFiles& files, const std::string& variant) {
  for (char c : variant) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
      throw Error("variant '" + variant + "' is not a weights variant name (letters, digits, _ and -, e.g. fp16)");
    }
  }
  const fs::path unet(files.unet_folder);
  const std::string stem = "diffusion_pytorch_model" + (variant.empty() ? "" : "." + variant);
  const fs::path weights = unet / (stem + ".safetensors");
  if (!is_file(weights)) {
    std::string why = "no " + weights.filename().string();
    if (!variant.empty()) why += " for --variant " + variant;
    if (is_file(unet / (stem + ".safetensors.index.json"))) {
      why += " (the weights are sharded: ddpm reads a single safetensors file)";
    } else if (is_file(unet / (stem + ".bin"))) {
      why += " (only " + stem + ".bin, a PyTorch pickle, which ddpm does not read: save with safetensors)";
    }
    throw Error(unet.string() + ": " + why);
  }
  return weights.string();
}

}  // namespace ddpm::detail
