/** The --name rule of the commands that act on an existing lab, for lab and agent commands alike. */
import { ConfigError } from "../../lab/config-error.js";
import { chooseLabName } from "../../lab/lab-name.js";
import { listLabs } from "../../lab/state.js";
import { UsageError } from "../output.js";

/** --name as given, else the only lab, else "lab"; several labs and no --name is a UsageError. */
export function existingLabName(given: string | undefined): string {
  try {
    return chooseLabName(given, listLabs());
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message, { cause: error });
    throw error;
  }
}
