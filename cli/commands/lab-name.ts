/** The --name rule of the commands that act on an existing lab, for lab and agent commands alike. */
import { chooseLabName } from "../../lab/lab-name.js";
import { listLabs } from "../../lab/state.js";

/** --name as given, else the only lab, else "lab"; several labs and no --name is a usage error
 *  (LabConfigError, which meshctl reports as one line with exit code 2). */
export function existingLabName(given: string | undefined): string {
  return chooseLabName(given, listLabs());
}
