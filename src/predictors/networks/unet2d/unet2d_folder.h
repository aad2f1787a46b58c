#pragma once
// Where a diffusers folder keeps a UNet2DModel: a model folder (config.json,
// diffusion_pytorch_model[.VARIANT].safetensors) or a pipeline folder
// (model_index.json, unet/, scheduler/scheduler_config.json).
#include <string>

namespace ddpm::detail {

struct UNet2DFiles {
  std::string unet_folder;       // the folder itself, or a pipeline's unet/
  std::string config;            // .../config.json
  std::string scheduler_config;  // a pipeline's scheduler/scheduler_config.json, or ""
};

// Throws ddpm::Error naming the folder and the file that is missing.
UNet2DFiles find_unet2d_files(const std::string& folder);

// .../diffusion_pytorch_model[.VARIANT].safetensors; throws ddpm::Error when
// it is missing (naming a .bin or sharded checkpoint, which ddpm does not read).
std::string find_unet2d_weights(const UNet2DFiles& files, const std::string& variant);

// Whether `path` is a folder (read as a diffusers model or pipeline), or
// such a folder's config.json or model_index.json.
bool is_diffusers_folder(const std::string& path);
bool diffusers_file_of_folder(const std::string& path);

}  // namespace ddpm::detail
